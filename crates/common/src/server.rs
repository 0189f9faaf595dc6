//! Serving a router until a stop signal, then draining gracefully.
//!
//! On SIGTERM or SIGINT: readiness turns 503 at once; after `SHUTDOWN_DELAY_MS` the listener
//! closes; in-flight requests finish (each is bounded by the request timeout); the process exits
//! once they are done, or after `SHUTDOWN_GRACE_MS` at the latest.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

use crate::app::Process;
use crate::cli::{Binary, Invocation};
use crate::config::{Env, HttpConfig};

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
    /// - one of the binary's [`crate::cli::Command`]s runs it, with the same environment and logs, and
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
        // Held to the end of `main`: dropping it writes out the last lines.
        let init_logs = |env: &Env| -> anyhow::Result<Option<crate::telemetry::LogGuard>> {
            let config = crate::telemetry::LogConfig::from_env(env)?;
            Ok(crate::telemetry::init(&config, binary.service))
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
                let _logs = init_logs(&env)?;
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
                let _logs = init_logs(&env)?;
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
        let metrics = crate::connections::ConnectionMetrics::new(&process.registry, process.name);
        let server = crate::connections::serve(
            listener,
            router,
            http.connections,
            http.limits.trusted_proxies,
            metrics,
            stop_accepting,
        );
        let drained = async {
            server.await;
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
