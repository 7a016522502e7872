//! Command lines of the form `[MODE] --name value ...`, with nothing to install.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// The parsed flags of a command line.
pub struct Args {
    usage: &'static str,
    flags: HashMap<String, String>,
}

impl Args {
    /// Reads `--name value` pairs from the process' arguments after `skip` of them (1 skips
    /// the program name). `-h` or `--help` prints `usage` and exits 0; a flag outside
    /// `known`, or one without a value, prints `usage` and exits 2.
    pub fn parse(skip: usize, known: &[&str], usage: &'static str) -> Args {
        let mut flags = HashMap::new();
        let mut it = std::env::args().skip(skip);
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                println!("{usage}");
                std::process::exit(0);
            }
            let name = flag.strip_prefix("--").unwrap_or("");
            if !known.contains(&name) {
                fail(usage, format!("unknown argument {flag:?}"));
            }
            let Some(value) = it.next() else {
                fail(usage, format!("{flag} needs a value"));
            };
            flags.insert(name.to_string(), value);
        }
        Args { usage, flags }
    }

    /// The value of `--name`, or `default` when it is absent; exits 2 when it does not parse.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T
    where
        T::Err: Display,
    {
        match self.flags.get(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|e| fail(self.usage, format!("--{name} {v}: {e}"))),
        }
    }

    /// The value of `--name` if it was given; exits 2 when it does not parse.
    pub fn opt<T: FromStr>(&self, name: &str) -> Option<T>
    where
        T::Err: Display,
    {
        self.flags.contains_key(name).then(|| {
            let v = &self.flags[name];
            v.parse()
                .unwrap_or_else(|e| fail(self.usage, format!("--{name} {v}: {e}")))
        })
    }
}

/// Prints `what` and the usage to stderr, then exits 2.
pub fn fail(usage: &str, what: String) -> ! {
    eprintln!("{what}\n{usage}");
    std::process::exit(2)
}
