//! Command-line flags of the form `--name value` and `--switch`.
//!
//! Every flag a program reads must be asked for by name; [`Flags::finish`] then rejects any
//! flag nobody asked for, so a typo is an error instead of a silently ignored setting.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// A command-line mistake, with text fit to print as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// Parsed flags: named values, switches and positional words, in the order given.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, String>,
    switches: BTreeSet<String>,
    positional: Vec<String>,
    asked: BTreeSet<String>,
}

impl Flags {
    /// Parses `args` (without the program name); names in `switches` take no value.
    ///
    /// A flag given twice is an error; so is a valued flag at the end without its value.
    pub fn parse<I>(args: I, switches: &[&str]) -> Result<Self, CliError>
    where
        I: IntoIterator<Item = String>,
    {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                flags.positional.push(arg);
                continue;
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (name.to_string(), None),
            };
            if switches.contains(&name.as_str()) {
                if inline.is_some() {
                    return Err(CliError(format!("--{name} takes no value")));
                }
                if !flags.switches.insert(name.clone()) {
                    return Err(CliError(format!("--{name} given twice")));
                }
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| CliError(format!("--{name} needs a value")))?,
            };
            if flags.values.insert(name.clone(), value).is_some() {
                return Err(CliError(format!("--{name} given twice")));
            }
        }
        Ok(flags)
    }

    /// The positional words (anything not starting with `--`), in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }

    /// Whether the switch `--name` was given.
    pub fn switch(&mut self, name: &str) -> bool {
        self.asked.insert(name.to_string());
        self.switches.contains(name)
    }

    /// The raw value of `--name`, if given.
    pub fn string(&mut self, name: &str) -> Option<String> {
        self.asked.insert(name.to_string());
        self.values.get(name).cloned()
    }

    /// The value of `--name` parsed as `T`, or `default`; must lie within `min..=max`.
    pub fn number<T>(&mut self, name: &str, default: T, min: T, max: T) -> Result<T, CliError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        let value: T = raw
            .parse()
            .map_err(|_| CliError(format!("--{name}: not a number: {raw:?}")))?;
        if value < min || value > max {
            return Err(CliError(format!(
                "--{name}: {value} is outside {min}..={max}"
            )));
        }
        Ok(value)
    }

    /// Fails on any flag that no call to [`switch`](Self::switch), [`string`](Self::string)
    /// or [`number`](Self::number) asked for.
    pub fn finish(&self) -> Result<(), CliError> {
        let unknown: Vec<String> = self
            .values
            .keys()
            .chain(self.switches.iter())
            .filter(|name| !self.asked.contains(*name))
            .map(|name| format!("--{name}"))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(CliError(format!("unknown flag(s): {}", unknown.join(" "))))
        }
    }
}

/// The `main` of a reference server (`NAME [--host H] [--port P] [--threads N]`): parses the
/// flags, runs `serve(addr)` on a multi-thread tokio runtime of that many workers, and says
/// what went wrong on standard error (exit 2 for bad flags, 1 for a failure).
pub fn server_main<F, Fut>(name: &str, default_port: u16, serve: F) -> std::process::ExitCode
where
    F: FnOnce(std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    use std::process::ExitCode;
    let (addr, threads) = match server_args(default_port) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{name}: {e}\nusage: {name} [--host H] [--port P] [--threads N]");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(serve(addr)),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--host` (default 127.0.0.1), `--port`, `--threads` (default: the available cores).
fn server_args(
    default_port: u16,
) -> Result<(std::net::SocketAddr, usize), Box<dyn std::error::Error>> {
    let mut flags = Flags::parse(std::env::args().skip(1), &[])?;
    let host = flags.string("host").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = flags.number("port", default_port, 0, u16::MAX)?;
    let default_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let threads: usize = flags.number("threads", default_threads, 1, 256)?;
    flags.finish()?;
    if !flags.positional().is_empty() {
        return Err("unexpected positional arguments".into());
    }
    Ok((format!("{host}:{port}").parse()?, threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, CliError> {
        Flags::parse(args.iter().map(|s| s.to_string()), &["json"])
    }

    #[test]
    fn values_switches_and_positional_words() {
        let mut f = parse(&["ws-echo", "--sessions", "10", "--rate=5.5", "--json"]).unwrap();
        assert_eq!(f.positional(), ["ws-echo"]);
        assert_eq!(f.number("sessions", 1u32, 1, 100).unwrap(), 10);
        assert_eq!(f.number("rate", 0.0f64, 0.0, 1e9).unwrap(), 5.5);
        assert_eq!(f.number("window", 4u32, 1, 100).unwrap(), 4);
        assert!(f.switch("json"));
        f.finish().unwrap();
    }

    #[test]
    fn rejects_unknown_duplicate_missing_and_out_of_range() {
        let mut f = parse(&["--sesions", "10"]).unwrap();
        assert_eq!(f.number("sessions", 1u32, 1, 100).unwrap(), 1);
        assert_eq!(f.finish().unwrap_err().0, "unknown flag(s): --sesions");
        assert!(parse(&["--a", "1", "--a", "2"]).is_err());
        assert!(parse(&["--a"]).is_err());
        assert!(parse(&["--json=1"]).is_err());
        let mut f = parse(&["--sessions", "0"]).unwrap();
        assert!(f.number("sessions", 1u32, 1, 100).is_err());
        let mut f = parse(&["--sessions", "ten"]).unwrap();
        assert!(f.number("sessions", 1u32, 1, 100).is_err());
    }
}
