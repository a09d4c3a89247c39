//! The thin shell: parse, run, turn the outcome into an exit status.

use std::process::ExitCode;

use imfilter::cli::Cli;
use imfilter::interrupt;
use imfilter::stack::mapped;

fn main() -> ExitCode {
    if let Err(e) = interrupt::install().and_then(|()| mapped::install_cut_short_handler()) {
        eprintln!("imfilter: error: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let cli = match Cli::parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (2).
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match imfilter::run::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(stop) = interrupt::find(&e) {
                eprintln!("imfilter: {stop}");
                return ExitCode::from(stop.exit_code());
            }
            // A chain that cannot be made is a usage error, like clap's own.
            if let Some(chain) = e.downcast_ref::<imfilter::filters::ChainError>() {
                eprintln!("imfilter: error: {chain}");
                return ExitCode::from(2);
            }
            if let Some(usage) = e.downcast_ref::<imfilter::cli::UsageError>() {
                eprintln!("imfilter: error: {usage}");
                return ExitCode::from(2);
            }
            // A reader that stops early (`imfilter … -o - | head -c 100`) is not an error.
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            // A file cut short under a map reads as zeros from then on, so whatever failed
            // after that is a consequence; the cause is what the user must hear.
            match mapped::cut_short() {
                Some(cut) => eprintln!("imfilter: error: {cut}"),
                None => eprintln!("imfilter: error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
