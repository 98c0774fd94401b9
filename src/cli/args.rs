//! A small, strict option parser: `--name value`, `--name=value`, flags without values,
//! positional arguments, `--` to end options. Unknown, repeated or value-less options are
//! usage errors.

use super::Error;

/// An option a command accepts: its name without dashes, and whether it takes a value.
pub(crate) type Spec = (&'static str, bool);

/// The parsed command line of one subcommand.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    given: Vec<(&'static str, Option<String>)>,
    /// Arguments that are not options.
    pub positional: Vec<String>,
}

impl Parsed {
    /// The value of an option that takes one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether a flag (or an option) was given.
    pub fn has(&self, name: &str) -> bool {
        self.given.iter().any(|(n, _)| *n == name)
    }

    /// A number option within `range`.
    pub fn number<T>(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, Error>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(v) = self.value(name) else {
            return Ok(None);
        };
        let n: T = v
            .parse()
            .map_err(|_| Error::usage(format!("--{name} {v}: not a number")))?;
        if !range.contains(&n) {
            return Err(Error::usage(format!(
                "--{name} {v}: expected {}-{}",
                range.start(),
                range.end()
            )));
        }
        Ok(Some(n))
    }
}

/// Parses `args` against `spec`, allowing at most `max_positional` positional arguments.
pub(crate) fn parse(
    args: &[String],
    spec: &[Spec],
    max_positional: usize,
) -> Result<Parsed, Error> {
    let mut out = Parsed::default();
    let mut iter = args.iter();
    let mut options_done = false;
    while let Some(arg) = iter.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            out.positional.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(Error::usage(format!("unknown option \"{arg}\"")));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&(known, takes_value)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(Error::usage(format!("unknown option \"--{name}\"")));
        };
        if out.has(known) {
            return Err(Error::usage(format!("--{known} given twice")));
        }
        let value = match (takes_value, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => match iter.next() {
                Some(v) => Some(v.clone()),
                None => return Err(Error::usage(format!("--{known} needs a value"))),
            },
            (false, Some(_)) => return Err(Error::usage(format!("--{known} takes no value"))),
            (false, None) => None,
        };
        out.given.push((known, value));
    }
    if out.positional.len() > max_positional {
        let extra = out
            .positional
            .get(max_positional)
            .cloned()
            .unwrap_or_default();
        return Err(Error::usage(format!("unexpected argument \"{extra}\"")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[Spec] = &[("user", true), ("force", false), ("digits", true)];

    fn p(a: &[&str]) -> Result<Parsed, Error> {
        let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        parse(&v, SPEC, 1)
    }

    #[test]
    fn values_flags_and_positionals_are_parsed() {
        let r = p(&["--user", "alice", "--force", "file", "--digits=8"]).unwrap();
        assert_eq!(r.value("user"), Some("alice"));
        assert!(r.has("force"));
        assert_eq!(r.number("digits", 6u32..=8).unwrap(), Some(8));
        assert_eq!(r.positional, vec!["file"]);
        let r = p(&["--", "--force"]).unwrap();
        assert_eq!(r.positional, vec!["--force"]);
    }

    #[test]
    fn unknown_repeated_and_malformed_options_are_usage_errors() {
        for bad in [
            &["--colour"][..],
            &["-x"],
            &["--user"],
            &["--force=yes"],
            &["--user", "a", "--user", "b"],
            &["a", "b"],
        ] {
            assert!(matches!(p(bad), Err(Error::Usage(_))), "{bad:?}");
        }
        let r = p(&["--digits", "9"]).unwrap();
        assert!(matches!(r.number("digits", 6u32..=8), Err(Error::Usage(_))));
    }
}
