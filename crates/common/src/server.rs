//! Serving a router until a stop signal, then draining gracefully.
//!
//! On SIGTERM or SIGINT: readiness turns 503 at once; after `SHUTDOWN_DELAY_MS` the listener
//! closes; in-flight requests finish (each is bounded by the request timeout); the process exits
//! once they are done, or after `SHUTDOWN_GRACE_MS` at the latest.

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

use crate::app::Process;
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
enum Invocation {
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
    fn invocation(&self, args: &[String]) -> Result<Invocation, String> {
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

/// A bound HTTP server, not yet serving.
pub struct Server {
    listener: TcpListener,
    router: Router,
    http: HttpConfig,
    process: Process,
}

impl Server {
    /// Binds the configured address (port 0 picks a free port, as tests do). The routes come
    /// later ([`Server::route`]), so services can be told the address actually bound.
    pub async fn bind(http: &HttpConfig, process: &Process) -> io::Result<Self> {
        let listener = TcpListener::bind(http.addr).await?;
        Ok(Self {
            listener,
            router: Router::new(),
            http: http.clone(),
            process: process.clone(),
        })
    }

    /// Sets the application to serve.
    #[must_use]
    pub fn route(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// What a binary's `main` does: reads the environment, sets up logging (its lines name
    /// the service), builds the server with `build` and serves until a stop signal. A
    /// configuration error ends start-up with a message naming the variable.
    ///
    /// The command line can ask for something else (`--help` lists it):
    /// - `healthcheck` asks the running process for its liveness and exits 0 or 1 (see
    ///   [`crate::probe`]): the container images have no shell or curl;
    /// - `--version` prints the version and the commit;
    /// - one of the binary's [`Command`]s runs it, with the same environment and logs, and
    ///   exits.
    ///
    /// An argument it does not know ends the process with status 2 and the usage.
    pub async fn main(
        binary: Binary,
        build: impl AsyncFnOnce(&Env) -> anyhow::Result<Self>,
    ) -> anyhow::Result<()> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let invocation = binary.invocation(&args).unwrap_or_else(|err| {
            eprintln!("error: {err}\n\n{}", binary.usage());
            std::process::exit(2);
        });
        let env = Env::from_process();
        let init_logs = |env: &Env| -> anyhow::Result<()> {
            crate::telemetry::init(&crate::telemetry::LogConfig::from_env(env)?, binary.service);
            Ok(())
        };
        match invocation {
            Invocation::Healthcheck => {
                let port = env.or(binary.port_variable, binary.default_port)?;
                // 0: live; 1: not.
                std::process::exit(i32::from(!crate::probe::live(port)));
            }
            Invocation::Version => println!("{}", binary.version_line()),
            Invocation::Help => print!("{}", binary.usage()),
            Invocation::Command(command) => {
                init_logs(&env)?;
                tracing::info!(
                    command = command.name,
                    version = crate::metrics::VERSION,
                    commit = crate::metrics::COMMIT,
                    "running"
                );
                (command.run)(env).await?;
                tracing::info!(command = command.name, "done");
            }
            Invocation::Serve => {
                init_logs(&env)?;
                build(&env).await?.run_until_signal().await?;
            }
        }
        Ok(())
    }

    /// Serves until SIGTERM or SIGINT, then drains. A second signal while draining ends the
    /// process at once.
    pub async fn run_until_signal(self) -> io::Result<()> {
        let process = self.process.clone();
        tokio::select! {
            result = self.run(shutdown_signal()) => result,
            () = async {
                process.stop_requested().await;
                shutdown_signal().await;
            } => Err(io::Error::other("second stop signal: exiting without draining")),
        }
    }

    /// Serves until `stop` completes, then drains. Ends with an error if requests were still in
    /// flight when the grace period ran out.
    pub async fn run(self, stop: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let Self {
            listener,
            router,
            http,
            process,
        } = self;
        tracing::info!(
            process = process.name,
            addr = %listener.local_addr()?,
            version = crate::metrics::VERSION,
            commit = crate::metrics::COMMIT,
            "listening"
        );
        let delay = http.shutdown_delay;
        let stopping = process.clone();
        let stop_accepting = async move {
            stop.await;
            tracing::info!("stop requested: readiness off, draining");
            stopping.begin_stop();
            tokio::time::sleep(delay).await;
        };
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(stop_accepting)
            .into_future();
        let drained = async {
            server.await?;
            tracing::info!("requests drained; waiting for background tasks");
            process.background_tasks_done().await;
            tracing::info!("background tasks done; exiting");
            Ok(())
        };
        let deadline = async {
            process.stop_requested().await;
            tokio::time::sleep(delay + http.shutdown_grace).await;
        };
        tokio::select! {
            result = drained => result,
            () = deadline => Err(io::Error::other(
                "grace period over with requests or background work unfinished",
            )),
        }
    }
}

/// Completes on SIGTERM (what orchestrators send) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
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
