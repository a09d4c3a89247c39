//! Everyday use (issue 15): shell completions and the manual page, generated from the one
//! clap definition, so they name every operation and option the program has.

use crate::support::Scratch;

fn stdout_of(args: &[&str]) -> String {
    let s = Scratch::new();
    let out = s.imfilter().args(args).assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_operation() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        // (fish writes options as `-l flat-mode`.)
        for word in ["remove-stripes", "background-correct", "flat-mode", "pages"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let s = Scratch::new();
    s.imfilter().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn the_manual_page_is_roff_naming_the_operations() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH imfilter"), "a man page title: {page}");
    for word in ["remove\\-stripes", "background\\-correct", "median"] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
}
