#!/usr/bin/env bash
# imfilter side by side with what users run today, on the same data, in one run.
#
#   benches/compare/compare.sh            # default: 64 x 2048 x 2048 uint16, ~10 min on 2 cores
#   benches/compare/compare.sh --quick    # 16 x 1024 x 1024, ~2 min: does the harness work?
#
# Steps: install the peers (skipping what is there), generate the data into a scratch directory
# (kept and reused while the parameters match), build imfilter in release mode, run every
# section (peers.py), print markdown tables on stdout and keep a copy in SCRATCH/results.md
# (raw numbers of every run in SCRATCH/results.json).
#
# Options
#   --quick            16 x 1024 x 1024 and fewer rounds (options after it override)
#   --pages N          projections in the main stack (default 64)
#   --shape HxW        image size (default 2048x2048)
#   --reps R           timed rounds of the background-correction section (default 5)
#   --sections LIST    comma-separated subset of bg,dir,decode,mem,median,scale (default all)
#   --threads N        "all threads" for imfilter and the peers (default: nproc)
#   --scratch DIR      data and outputs (default /tmp/imfilter-compare); needs ~10 GB by default
#   --imfilter BIN     use this binary instead of building one
#   --no-install       do not apt-get / pip install anything
#   --clean            delete the scratch directory (data and results) at the end
# Environment
#   IMFILTER_MEDIAN_ARGS  how to call the median command (default "median --size {size}")
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

pages=64 shape=2048x2048 reps=5 reps_dir=3 reps_median=3 sections=bg,dir,decode,mem,median,scale
threads="$(nproc)" scratch=/tmp/imfilter-compare imfilter="" install=1 clean=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --quick) pages=16 shape=1024x1024 reps=3 reps_dir=2 reps_median=2 ;;  # later options override
        --pages) pages="$2"; shift ;;
        --shape) shape="$2"; shift ;;
        --reps) reps="$2"; shift ;;
        --sections) sections="$2"; shift ;;
        --threads) threads="$2"; shift ;;
        --scratch) scratch="$2"; shift ;;
        --imfilter) imfilter="$2"; shift ;;
        --no-install) install=0 ;;
        --clean) clean=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
height="${shape%x*}" width="${shape#*x}"
say() { printf '\n== %s\n' "$*" >&2; }

# ------------------------------------------------------------------------------ peers
if ((install)); then
    say "peers"
    apt_missing=()
    for pkg in libvips-tools imagemagick hyperfine time libtiff-tools; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$pkg")
    done
    if ((${#apt_missing[@]})); then
        sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
        echo "apt-get install ${apt_missing[*]}" >&2
        { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_missing[@]}"; } >&2 \
            || echo "compare.sh: apt-get failed; the peers it would have installed are skipped" >&2
    fi
    pip_missing=()
    for mod in numpy:numpy tifffile:tifffile scipy:scipy cv2:opencv-python-headless numexpr:numexpr pyvips:pyvips imagecodecs:imagecodecs; do
        python3 -c "import ${mod%%:*}" 2>/dev/null || pip_missing+=("${mod#*:}")
    done
    if ((${#pip_missing[@]})); then
        echo "pip install ${pip_missing[*]}" >&2
        python3 -m pip install -q "${pip_missing[@]}" >&2 \
            || echo "compare.sh: pip install failed; missing peers are skipped" >&2
    fi
fi
for mod in numpy tifffile; do
    python3 -c "import $mod" 2>/dev/null || { echo "compare.sh: python3 needs $mod (drop --no-install?)" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || echo "compare.sh: note: /usr/bin/time is missing; peaks come from wait4 anyway" >&2

# ------------------------------------------------------------------------------ data
data="$scratch/data"
data_version=3  # bump when the list of generated files below changes
stamp="v$data_version pages=$pages shape=$shape generator=$(sha256sum "$here/make_stack.py" | cut -c1-16)"
if [[ -f "$data/.stamp" && "$(cat "$data/.stamp")" == "$stamp" ]]; then
    say "data: reusing $data ($stamp)"
else
    say "data: generating into $data ($stamp)"
    rm -rf "$data"
    mkdir -p "$data"
    gen() { python3 "$here/make_stack.py" "$@"; }
    small="$((height / 4))x$((width / 4))"
    gen "$data" -n "$pages" --shape "$shape" --layout both                       # stack.tif, stack/, flat, dark
    gen "$data/dir_many" -n "$((pages * 16))" --shape "$small" --layout both      # same pixels, 16x the files
    gen "$data" -n 10 --shape "$shape" --no-refs --name mem_small
    gen "$data" -n "$((pages * 4))" --shape "$shape" --no-refs --name mem_large --cycle 16
    median_pages="$((pages / 8 > 0 ? pages / 8 : 1))"
    gen "$data" -n "$median_pages" --shape "$shape" --no-refs --name median_u16
    gen "$data" -n "$median_pages" --shape "$shape" --no-refs --name median_f32 --dtype float32
    gen "$data" -n "$((pages / 4 > 0 ? pages / 4 : 1))" --shape "$shape" --no-refs --name deflate --compression deflate
    gen "$data" -n "$((pages / 4 > 0 ? pages / 4 : 1))" --shape "$shape" --no-refs --name lzw --compression lzw
    gen "$data" -n 2 --shape 512x512 --no-refs --name crop_u16
    gen "$data" -n 2 --shape 512x512 --no-refs --name crop_f32 --dtype float32
    echo "$stamp" > "$data/.stamp"
fi

# ------------------------------------------------------------------------------ imfilter
if [[ -z "$imfilter" ]]; then
    say "building imfilter (release)"
    (cd "$repo" && cargo build --release --bin imfilter >&2)
    imfilter="${CARGO_TARGET_DIR:-$repo/target}/release/imfilter"
fi
[[ -x "$imfilter" ]] || { echo "compare.sh: $imfilter is not an executable" >&2; exit 1; }

# ------------------------------------------------------------------------------ run
say "measuring: sections $sections, $threads threads, $reps rounds (progress below, tables on stdout)"
python3 "$here/peers.py" --data "$data" --imfilter "$imfilter" --sections "$sections" --threads "$threads" \
    --reps "$reps" --reps-dir "$reps_dir" --reps-median "$reps_median" --json "$scratch/results.json" \
    | tee "$scratch/results.md"
echo "compare.sh: tables in $scratch/results.md, raw numbers in $scratch/results.json" >&2
if ((clean)); then
    rm -rf "$scratch"
fi
