//! `batch` inputs: files, directories (their `*.json` files, sorted, less the summaries
//! `batch` writes next to proofs) and `-` (paths on stdin, one per line), expanded into
//! the list of block files; and reading one with the `--max-input-mib` limit.

use std::io;
use std::path::{Path, PathBuf};

/// One input after expansion: a block file, or what is wrong with an argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Bad { path: PathBuf, message: String },
}

/// What expansion needs from the file system (a trait so the rules are tested without one).
pub trait Lister {
    /// `Ok(Some(entries))` for a directory, `Ok(None)` for anything else that exists.
    fn list(&self, path: &Path) -> io::Result<Option<Vec<PathBuf>>>;
}

/// The real file system.
pub struct Fs;

impl Lister for Fs {
    fn list(&self, path: &Path) -> io::Result<Option<Vec<PathBuf>>> {
        if !std::fs::metadata(path)?.is_dir() {
            return Ok(None);
        }
        std::fs::read_dir(path)?.map(|e| e.map(|e| e.path())).collect::<io::Result<_>>().map(Some)
    }
}

/// Expand `args` in order. `stdin` gives the text of standard input (read once, for
/// the first `-`; a second `-` is an error).
pub fn expand(
    args: &[PathBuf],
    fs: &dyn Lister,
    stdin: &mut dyn FnMut() -> io::Result<String>,
) -> Vec<Input> {
    let mut out = Vec::new();
    let mut read_stdin = false;
    for arg in args {
        if arg.as_os_str() == "-" {
            if read_stdin {
                out.push(Input::Bad {
                    path: arg.clone(),
                    message: "`-` (paths on stdin) given twice".into(),
                });
                continue;
            }
            read_stdin = true;
            match stdin() {
                Ok(text) => {
                    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        expand_path(Path::new(line), fs, &mut out);
                    }
                }
                Err(e) => out
                    .push(Input::Bad { path: arg.clone(), message: format!("reading paths on stdin: {e}") }),
            }
        } else {
            expand_path(arg, fs, &mut out);
        }
    }
    out
}

fn expand_path(path: &Path, fs: &dyn Lister, out: &mut Vec<Input>) {
    let bad = |message: String| Input::Bad { path: path.to_owned(), message };
    match fs.list(path) {
        Ok(None) => out.push(Input::File(path.to_owned())),
        Ok(Some(entries)) => {
            // A `<name>.json` beside `<name>.proof` is a batch summary, not a block.
            let summary = |p: &PathBuf| entries.contains(&p.with_extension("proof"));
            let mut blocks: Vec<PathBuf> = entries
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "json") && !summary(p))
                .cloned()
                .collect();
            blocks.sort();
            if blocks.is_empty() {
                out.push(bad("a directory with no *.json block files".into()));
            }
            out.extend(blocks.into_iter().map(Input::File));
        }
        Err(e) => out.push(bad(format!("cannot read: {e}"))),
    }
}

/// Read a block file, at most `limit` bytes: `Err` is a bad-input message naming the file.
pub fn read_block(path: &Path, limit: u64, limit_mib: u64) -> Result<Vec<u8>, String> {
    let cannot = |e: io::Error| format!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(cannot)?;
    let too_large = || {
        format!(
            "{} is larger than {limit_mib} MiB, the most a block with its witness may be \
             (raise it with --max-input-mib)",
            path.display()
        )
    };
    if file.metadata().map_err(cannot)?.len() > limit {
        return Err(too_large());
    }
    match crate::verify::read_limited(file, limit).map_err(cannot)? {
        crate::verify::Limited::Within(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
            Err(format!("{} is empty", path.display()))
        }
        crate::verify::Limited::Within(bytes) => Ok(bytes),
        crate::verify::Limited::Over => Err(too_large()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fake(HashMap<&'static str, Option<Vec<&'static str>>>);

    impl Lister for Fake {
        fn list(&self, path: &Path) -> io::Result<Option<Vec<PathBuf>>> {
            match self.0.get(path.to_str().unwrap()) {
                Some(entries) => Ok(entries.as_ref().map(|e| e.iter().map(PathBuf::from).collect())),
                None => Err(io::Error::new(io::ErrorKind::NotFound, "No such file or directory")),
            }
        }
    }

    fn file(p: &str) -> Input {
        Input::File(p.into())
    }

    #[test]
    fn files_directories_and_stdin_expand_in_order() {
        let fs = Fake(HashMap::from([
            ("a.json", None),
            (
                "blocks",
                Some(vec![
                    "blocks/9.json",
                    "blocks/README.md",
                    "blocks/10.json",
                    "blocks/7-ab.json",
                    "blocks/7-ab.proof",
                ]),
            ),
            ("listed.json", None),
            ("empty", Some(vec!["empty/notes.txt"])),
        ]));
        let mut stdin = || Ok("listed.json\n\n  a.json \n".to_owned());
        let args: Vec<PathBuf> =
            ["a.json", "blocks", "-", "missing.json", "empty", "-"].map(PathBuf::from).into();
        let got = expand(&args, &fs, &mut stdin);
        assert_eq!(
            got[..5],
            [
                file("a.json"),
                file("blocks/10.json"),
                file("blocks/9.json"),
                file("listed.json"),
                file("a.json")
            ]
        );
        let bad: Vec<(&str, &str)> = got[5..]
            .iter()
            .map(|i| match i {
                Input::Bad { path, message } => (path.to_str().unwrap(), message.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0].0 == "missing.json" && bad[0].1.contains("No such file"), "{bad:?}");
        assert!(bad[1].0 == "empty" && bad[1].1.contains("no *.json"), "{bad:?}");
        assert!(bad[2].0 == "-" && bad[2].1.contains("twice"), "{bad:?}");
    }

    #[test]
    fn reading_is_bounded_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(&path, b"{\"block\": 1}").unwrap();
        assert_eq!(read_block(&path, 1 << 20, 1).unwrap(), b"{\"block\": 1}");
        let err = read_block(&path, 4, 0).unwrap_err();
        assert!(err.contains("b.json is larger than 0 MiB"), "{err}");
        std::fs::write(&path, b" \n").unwrap();
        assert!(read_block(&path, 1 << 20, 1).unwrap_err().contains("b.json is empty"));
        assert!(read_block(&dir.path().join("nope.json"), 10, 1).unwrap_err().contains("cannot read"));
    }
}
