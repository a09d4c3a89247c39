//! TIFF's LZW encoder (TIFF 6.0, section 13: MSB-first codes of 9 to 12 bits, Clear 256,
//! EndOfInformation 257, the code width raised one code early, a Clear before the table
//! outgrows 12 bits).
//!
//! Why not the `tiff` crate's encoder (weezl): weezl keeps its dictionary as a tree whose busy
//! nodes are 256-entry arrays, zero-filled each time one is made. On detector images, whose low
//! bytes are noise, the table fills every few kilobytes and nearly every prefix becomes such a
//! node: `perf` put 31 % of an LZW output run in `memset` and 49 % in the tree walk, and the
//! whole run took 2.2 × tifffile's (imagecodecs' C encoder) on the same 2 cores.
//!
//! This is the hashed dictionary of Welch's 1984 paper ("A Technique for High-Performance Data
//! Compression", IEEE Computer 17(6)) as libtiff's `tif_lzw.c` uses it, with one change: each
//! entry carries the generation of the table it belongs to, so a Clear costs one increment
//! instead of wiping the table. The LZW patents expired in 2003–2004.

/// Codes of the TIFF variant.
const CLEAR: u16 = 256;
const END: u16 = 257;
const FIRST_FREE: u16 = 258;
/// The table is cleared when this code would be assigned next: the decoder, one entry behind,
/// would otherwise switch to 13-bit codes (libtiff's `CODE_MAX - 1`).
const FULL: u16 = 4094;

/// Slots of the open-addressed dictionary: at most 3836 entries live at once, so probes stay
/// short at a load under one half.
const SLOTS: usize = 1 << 13;
/// A slot holds `generation << KEY_BITS | key`, the key being `prefix << 8 | byte` (20 bits).
const KEY_BITS: u32 = 20;
const KEY_MASK: u32 = (1 << KEY_BITS) - 1;
/// Generations fit in the 12 bits above the key; the table is wiped once every 4095 clears.
const LAST_GENERATION: u32 = (1 << (32 - KEY_BITS)) - 1;

/// The string table of one strip, reused across strips by the same worker.
struct Dictionary {
    slots: Vec<u32>,
    codes: Vec<u16>,
    generation: u32,
}

impl Dictionary {
    fn new() -> Dictionary {
        Dictionary {
            slots: vec![0; SLOTS],
            codes: vec![0; SLOTS],
            generation: 1,
        }
    }

    fn clear(&mut self) {
        if self.generation == LAST_GENERATION {
            self.slots.fill(0);
            self.generation = 1;
        } else {
            self.generation += 1;
        }
    }

    /// The code for `key`, or the slot where it belongs.
    fn find(&self, key: u32) -> Result<u16, usize> {
        let stamp = self.generation << KEY_BITS;
        let mut slot = (key.wrapping_mul(0x9E37_79B1) >> (32 - SLOTS.trailing_zeros())) as usize;
        loop {
            let held = self.slots[slot];
            if held & !KEY_MASK != stamp {
                return Err(slot);
            }
            if held & KEY_MASK == key {
                return Ok(self.codes[slot]);
            }
            slot = (slot + 1) & (SLOTS - 1);
        }
    }

    fn insert(&mut self, slot: usize, key: u32, code: u16) {
        self.slots[slot] = self.generation << KEY_BITS | key;
        self.codes[slot] = code;
    }
}

/// Codes packed most significant bit first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    pending: u64,
    bits: u32,
}

impl BitWriter<'_> {
    fn put(&mut self, code: u16, width: u32) {
        self.pending = self.pending << width | u64::from(code);
        self.bits += width;
        if self.bits >= 32 {
            self.bits -= 32;
            self.out
                .extend_from_slice(&((self.pending >> self.bits) as u32).to_be_bytes());
        }
    }

    fn finish(self) {
        let mut bits = self.bits;
        while bits > 0 {
            let take = bits.min(8);
            let byte = (self.pending << (8 - take) >> (bits - take)) as u8;
            self.out.push(byte);
            bits -= take;
        }
    }
}

/// Where the code width and the table stand after a code is assigned.
struct Codes {
    next: u16,
    width: u32,
}

impl Codes {
    fn fresh() -> Codes {
        Codes {
            next: FIRST_FREE,
            width: 9,
        }
    }

    /// Counts one more assigned code; true when the table is now full and must be cleared.
    fn assign(&mut self) -> bool {
        self.next += 1;
        if self.next == FULL {
            return true;
        }
        if u32::from(self.next) >= 1 << self.width {
            self.width += 1;
        }
        false
    }
}

thread_local! {
    static DICTIONARY: std::cell::RefCell<Dictionary> = std::cell::RefCell::new(Dictionary::new());
}

/// Appends `bytes` compressed as one TIFF LZW strip to `out`.
pub fn encode(bytes: &[u8], out: &mut Vec<u8>) {
    DICTIONARY.with_borrow_mut(|dictionary| encode_with(dictionary, bytes, out));
}

fn encode_with(dictionary: &mut Dictionary, bytes: &[u8], out: &mut Vec<u8>) {
    dictionary.clear();
    let mut writer = BitWriter {
        out,
        pending: 0,
        bits: 0,
    };
    let mut codes = Codes::fresh();
    writer.put(CLEAR, codes.width);
    let Some((&first, rest)) = bytes.split_first() else {
        writer.put(END, codes.width);
        writer.finish();
        return;
    };
    let mut prefix = u16::from(first);
    for &byte in rest {
        let key = u32::from(prefix) << 8 | u32::from(byte);
        match dictionary.find(key) {
            Ok(code) => prefix = code,
            Err(slot) => {
                writer.put(prefix, codes.width);
                dictionary.insert(slot, key, codes.next);
                if codes.assign() {
                    writer.put(CLEAR, codes.width);
                    dictionary.clear();
                    codes = Codes::fresh();
                }
                prefix = u16::from(byte);
            }
        }
    }
    writer.put(prefix, codes.width);
    // The decoder assigns a code for the last one too, and may widen before the end code.
    if codes.assign() {
        writer.put(CLEAR, codes.width);
        codes = Codes::fresh();
    }
    writer.put(END, codes.width);
    writer.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(stream: &[u8]) -> Vec<u8> {
        let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
        decoder.decode(stream).expect("the stream decodes")
    }

    fn noise(n: usize, seed: u64, levels: u64) -> Vec<u8> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) % levels) as u8
            })
            .collect()
    }

    fn compress(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(bytes, &mut out);
        out
    }

    #[test]
    fn round_trips_through_weezls_tiff_decoder() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![7],
            vec![0; 100_000],
            (0..=255).collect(),
            noise(300_000, 1, 256),
            noise(300_000, 2, 16),
            noise(1_000_000, 3, 3),
        ];
        for bytes in &cases {
            assert_eq!(decode(&compress(bytes)), *bytes, "{} bytes", bytes.len());
        }
    }

    #[test]
    fn every_length_across_the_width_switches_round_trips() {
        // Noise assigns one code per byte, so these lengths end on each side of every width
        // switch and of the clear.
        let bytes = noise(9000, 4, 256);
        for n in (0..9000)
            .step_by(7)
            .chain(250..270)
            .chain(505..520)
            .chain(4085..4100)
        {
            assert_eq!(decode(&compress(&bytes[..n])), bytes[..n], "{n} bytes");
        }
    }

    #[test]
    fn is_no_larger_than_the_tiff_crates_encoder() {
        for bytes in [noise(200_000, 5, 256), noise(200_000, 6, 40), vec![3; 5000]] {
            let mut theirs = Vec::new();
            tiff::encoder::compression::CompressionAlgorithm::write_to(
                &mut tiff::encoder::compression::Lzw,
                &mut theirs,
                &bytes,
            )
            .expect("in memory");
            assert!(compress(&bytes).len() <= theirs.len());
        }
    }

    #[test]
    fn a_dictionary_reused_past_its_generations_still_encodes_right() {
        let mut dictionary = Dictionary::new();
        dictionary.generation = LAST_GENERATION - 2;
        let bytes = noise(100_000, 7, 256);
        for _ in 0..5 {
            let mut out = Vec::new();
            encode_with(&mut dictionary, &bytes, &mut out);
            assert_eq!(decode(&out), bytes);
        }
    }
}
