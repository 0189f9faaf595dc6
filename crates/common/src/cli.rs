//! A binary's command line: serving, or one of the commands that run instead (the health
//! check, `--version`, `--help`, and each service's one-off admin commands).

use std::fmt::Write as _;
use std::future::Future;

use crate::config::{Env, HttpConfig};

/// What tells a binary apart: the service its logs name, and the variable holding its port.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// The service's name in logs: `figalize`, `history`, `imagizer`, or `site`.
    pub service: &'static str,
    /// The environment variable of its port, e.g. `FIGALIZE_API_PORT`.
    pub port_variable: &'static str,
    /// The port when that variable is unset.
    pub default_port: u16,
    /// One-off administrative commands, run as `<binary> <name>` instead of serving.
    pub commands: &'static [Command],
}

/// A one-off administrative command of a binary (twelve-factor's admin processes): it reads
/// the same environment as the service, does its job and exits.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// What follows the binary's name, e.g. `migrate`.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// The work; it ends the process with 0 on `Ok`, with 1 and the error on `Err`.
    pub run: fn(Env) -> CommandFuture,
}

/// What a [`Command`] returns.
pub type CommandFuture = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// What the command line asks a binary to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invocation {
    Serve,
    Healthcheck,
    Version,
    Help,
    Command(Command),
}

impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Command {}

impl Binary {
    /// Its HTTP settings, with its port variable.
    pub fn http(&self, env: &Env) -> Result<HttpConfig, crate::config::ConfigError> {
        HttpConfig::from_env(env, self.port_variable, self.default_port)
    }

    /// `<service> <version> (commit <commit>)`, what `--version` prints.
    pub fn version_line(&self) -> String {
        format!(
            "{} {} (commit {})",
            self.service,
            crate::metrics::VERSION,
            crate::metrics::COMMIT
        )
    }

    /// What `--help` prints.
    pub fn usage(&self) -> String {
        let mut usage = format!(
            "{version}\n\nUsage: {service} [COMMAND]\n\nWith no command, serves HTTP on ${port} \
             (default {default}), configured by environment variables.\n\nCommands:\n",
            version = self.version_line(),
            service = self.service,
            port = self.port_variable,
            default = self.default_port,
        );
        let builtin = [
            (
                "healthcheck",
                "exit 0 if the running service on this port is live, else 1",
            ),
            ("--version", "print the version and commit"),
            ("--help", "print this help"),
        ];
        let lines = self
            .commands
            .iter()
            .map(|command| (command.name, command.about))
            .chain(builtin);
        for (name, about) in lines {
            // Writing to a String cannot fail.
            let _ = writeln!(usage, "  {name:<22}{about}");
        }
        usage
    }

    /// Reads the arguments after the binary's name.
    pub(crate) fn invocation(&self, args: &[String]) -> Result<Invocation, String> {
        let invocation = match args.first().map(String::as_str) {
            None => Invocation::Serve,
            Some("healthcheck") => Invocation::Healthcheck,
            Some("--version" | "-V" | "version") => Invocation::Version,
            Some("--help" | "-h" | "help") => Invocation::Help,
            Some(name) => match self.commands.iter().find(|command| command.name == name) {
                Some(command) => Invocation::Command(*command),
                None => return Err(format!("unknown command `{name}`")),
            },
        };
        match args.get(1) {
            Some(extra) => Err(format!("unexpected argument `{extra}`")),
            None => Ok(invocation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: Env) -> CommandFuture {
        Box::pin(async { Ok(()) })
    }

    const MIGRATE: Command = Command {
        name: "migrate",
        about: "apply the migrations",
        run: nothing,
    };

    const BINARY: Binary = Binary {
        service: "history",
        port_variable: "HISTORY_API_PORT",
        default_port: 8001,
        commands: &[MIGRATE],
    };

    fn invocation(args: &[&str]) -> Result<Invocation, String> {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        BINARY.invocation(&args)
    }

    #[test]
    fn reads_the_command_line() {
        assert_eq!(invocation(&[]), Ok(Invocation::Serve));
        assert_eq!(invocation(&["healthcheck"]), Ok(Invocation::Healthcheck));
        for flag in ["--version", "-V", "version"] {
            assert_eq!(invocation(&[flag]), Ok(Invocation::Version));
        }
        for flag in ["--help", "-h", "help"] {
            assert_eq!(invocation(&[flag]), Ok(Invocation::Help));
        }
        assert_eq!(invocation(&["migrate"]), Ok(Invocation::Command(MIGRATE)));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert_eq!(
            invocation(&["migrat"]),
            Err("unknown command `migrat`".to_owned())
        );
        assert_eq!(
            invocation(&["migrate", "now"]),
            Err("unexpected argument `now`".to_owned())
        );
    }

    #[test]
    fn usage_lists_every_command_and_the_port() {
        let usage = BINARY.usage();
        assert!(usage.starts_with(&BINARY.version_line()), "{usage}");
        assert!(
            usage.contains("$HISTORY_API_PORT (default 8001)"),
            "{usage}"
        );
        for name in ["migrate", "healthcheck", "--version", "--help"] {
            assert!(
                usage.contains(&format!("\n  {name} ")),
                "{name} missing: {usage}"
            );
        }
    }

    #[test]
    fn version_names_service_version_and_commit() {
        assert_eq!(
            BINARY.version_line(),
            format!(
                "history {} (commit {})",
                env!("CARGO_PKG_VERSION"),
                crate::metrics::COMMIT
            )
        );
    }
}
