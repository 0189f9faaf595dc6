//! Typed configuration, read once from the environment at start-up.
//!
//! Every reader names the variable it failed on, so a bad deployment stops with a message an
//! operator can act on. Values come through [`Env`] so tests can pass a map instead of touching
//! the process environment.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderValue;

use crate::connections::ConnectionsConfig;
use crate::limits::LimitsConfig;

/// A configuration value that is missing or malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error about `variable`.
    pub fn new(variable: &str, reason: impl Display) -> Self {
        Self {
            variable: variable.to_owned(),
            reason: reason.to_string(),
        }
    }
}

type Lookup = dyn Fn(&str) -> Option<OsString> + Send + Sync;

/// Where configuration comes from: the process environment, or a fixed map in tests.
pub struct Env {
    lookup: Box<Lookup>,
}

impl Env {
    /// The environment of this process.
    pub fn from_process() -> Self {
        Self {
            lookup: Box::new(|name| std::env::var_os(name)),
        }
    }

    /// A fixed set of variables; anything else is unset.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, OsString> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), OsString::from(v.into())))
            .collect();
        Self {
            lookup: Box::new(move |name| map.get(name).cloned()),
        }
    }

    /// The raw text of `name`. An empty value counts as unset, as compose files and ConfigMaps
    /// often write `NAME=` to mean "use the default".
    pub fn text(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match (self.lookup)(name) {
            None => Ok(None),
            Some(raw) => {
                let text = raw
                    .into_string()
                    .map_err(|_| ConfigError::new(name, "is not valid UTF-8"))?;
                let text = text.trim();
                Ok((!text.is_empty()).then(|| text.to_owned()))
            }
        }
    }

    /// `name` parsed as `T`, or `None` when unset.
    pub fn optional<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.text(name)?
            .map(|text| {
                text.parse::<T>()
                    .map_err(|e| ConfigError::new(name, format!("cannot parse {text:?}: {e}")))
            })
            .transpose()
    }

    /// `name` parsed as `T`, or `default` when unset.
    pub fn or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.optional(name)?.unwrap_or(default))
    }

    /// `name` parsed as `T`; unset is an error.
    pub fn required<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.optional(name)?
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// A count that must be at least 1, or `default` when unset.
    pub fn positive(&self, name: &str, default: usize) -> Result<usize, ConfigError> {
        match self.or(name, default)? {
            0 => Err(ConfigError::new(name, "must be positive")),
            n => Ok(n),
        }
    }

    /// A duration given in milliseconds, or `default` when unset.
    pub fn millis(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(self
            .optional::<u64>(name)?
            .map_or(default, Duration::from_millis))
    }
}

/// How a service listens and treats requests.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to listen on: `HOST` (default 127.0.0.1) and the service's port variable.
    pub addr: SocketAddr,
    /// `REQUEST_TIMEOUT_MS`: a request still running after this gets 503.
    pub request_timeout: Duration,
    /// `MAX_BODY_BYTES`: larger request bodies get 413.
    pub body_limit: usize,
    /// `MAX_INTERNAL_BODY_BYTES`: the same for the internal routes (history's appends, which
    /// carry figalize's batches).
    pub internal_body_limit: usize,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins allowed to call the API from a browser.
    /// Empty means same-origin only (the site and the API share an origin behind the ingress).
    pub cors_origins: Vec<HeaderValue>,
    /// `SHUTDOWN_DELAY_MS`: after a stop signal, keep serving this long while readiness answers
    /// 503, so load balancers stop sending traffic before the listener closes.
    pub shutdown_delay: Duration,
    /// `SHUTDOWN_GRACE_MS`: how long in-flight requests may take to drain before the process exits.
    pub shutdown_grace: Duration,
    /// Load shedding and rate limits per client.
    pub limits: LimitsConfig,
    /// How many connections, and how long each has to send its headers.
    pub connections: ConnectionsConfig,
}

impl HttpConfig {
    /// Reads the HTTP settings; `port_var` names the service's port variable.
    pub fn from_env(env: &Env, port_var: &str, default_port: u16) -> Result<Self, ConfigError> {
        let host: IpAddr = env.or("HOST", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let port: u16 = env.or(port_var, default_port)?;
        let body_limit = env.positive("MAX_BODY_BYTES", 8 * 1024)?;
        let internal_body_limit = env.positive("MAX_INTERNAL_BODY_BYTES", 1 << 20)?;
        let request_timeout = env.millis("REQUEST_TIMEOUT_MS", Duration::from_secs(10))?;
        if request_timeout.is_zero() {
            return Err(ConfigError::new("REQUEST_TIMEOUT_MS", "must be positive"));
        }
        Ok(Self {
            addr: SocketAddr::new(host, port),
            request_timeout,
            body_limit,
            internal_body_limit,
            cors_origins: cors_origins(env)?,
            shutdown_delay: env.millis("SHUTDOWN_DELAY_MS", Duration::ZERO)?,
            shutdown_grace: env.millis("SHUTDOWN_GRACE_MS", Duration::from_secs(20))?,
            limits: limits(env)?,
            connections: ConnectionsConfig::from_env(env)?,
        })
    }
}

/// The largest `MAX_HEADER_BYTES` allowed: the HTTP parser buffers no more (1 MiB).
pub const MAX_HEADER_BYTES_LIMIT: usize = 1 << 20;

/// Requests per second per client by default: a visitor's page makes about a dozen requests
/// when it opens and one or two per phrase, so only a program meets the limit.
pub const DEFAULT_RATE_PER_SECOND: f64 = 50.0;

/// `MAX_HEADER_BYTES` (16 KiB), `MAX_CONCURRENT_REQUESTS` (1024), `RATE_LIMIT_PER_SECOND`
/// ([`DEFAULT_RATE_PER_SECOND`]; 0 turns it off), `RATE_LIMIT_BURST` (twice the rate),
/// `TRUSTED_PROXIES` (none).
fn limits(env: &Env) -> Result<LimitsConfig, ConfigError> {
    let rate: f64 = env.or("RATE_LIMIT_PER_SECOND", DEFAULT_RATE_PER_SECOND)?;
    if !rate.is_finite() || rate < 0.0 {
        return Err(ConfigError::new(
            "RATE_LIMIT_PER_SECOND",
            "must be a number of requests per second, 0 for no limit",
        ));
    }
    let burst: f64 = env.or("RATE_LIMIT_BURST", (2.0 * rate).max(1.0))?;
    if !burst.is_finite() || burst < 1.0 {
        return Err(ConfigError::new("RATE_LIMIT_BURST", "must be at least 1"));
    }
    let trusted_proxies = env
        .text("TRUSTED_PROXIES")?
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse()
                .map_err(|e| ConfigError::new("TRUSTED_PROXIES", e))
        })
        .collect::<Result<_, _>>()?;
    Ok(LimitsConfig {
        max_header_bytes: match env.positive("MAX_HEADER_BYTES", 16 * 1024)? {
            n if n > MAX_HEADER_BYTES_LIMIT => {
                return Err(ConfigError::new(
                    "MAX_HEADER_BYTES",
                    format!("must be at most {MAX_HEADER_BYTES_LIMIT}"),
                ));
            }
            n => n,
        },
        max_concurrent: env.positive("MAX_CONCURRENT_REQUESTS", 1024)?,
        rate_per_second: rate,
        burst,
        trusted_proxies,
    })
}

fn cors_origins(env: &Env) -> Result<Vec<HeaderValue>, ConfigError> {
    const NAME: &str = "CORS_ALLOWED_ORIGINS";
    let Some(text) = env.text(NAME)? else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            if origin == "*" {
                return Err(ConfigError::new(
                    NAME,
                    "\"*\" is not accepted: list the origins that may call the API",
                ));
            }
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError::new(
                    NAME,
                    format!("{origin:?} is not an origin like https://example.org"),
                ));
            }
            HeaderValue::from_str(origin)
                .map_err(|_| ConfigError::new(NAME, format!("{origin:?} is not a valid origin")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = HttpConfig::from_env(&Env::from_pairs::<&str, &str>([]), "P", 8002).unwrap();
        assert_eq!(config.addr, "127.0.0.1:8002".parse().unwrap());
        assert_eq!(config.body_limit, 8192);
        assert!(config.cors_origins.is_empty());
    }

    #[test]
    fn a_malformed_port_names_its_variable() {
        let env = Env::from_pairs([("FIGALIZE_API_PORT", "eighty")]);
        let err = HttpConfig::from_env(&env, "FIGALIZE_API_PORT", 8002).unwrap_err();
        assert_eq!(err.variable, "FIGALIZE_API_PORT");
        assert!(
            err.to_string()
                .starts_with("FIGALIZE_API_PORT: cannot parse \"eighty\"")
        );
    }

    #[test]
    fn an_empty_value_means_the_default() {
        let env = Env::from_pairs([("HOST", " "), ("P", "")]);
        let config = HttpConfig::from_env(&env, "P", 9000).unwrap();
        assert_eq!(config.addr, "127.0.0.1:9000".parse().unwrap());
    }

    #[test]
    fn a_required_variable_that_is_missing_is_an_error() {
        let err = Env::from_pairs::<&str, &str>([])
            .required::<u16>("DB_PORT")
            .unwrap_err();
        assert_eq!(err.to_string(), "DB_PORT: is required but not set");
    }

    #[test]
    fn cors_wildcard_is_refused_and_origins_are_parsed() {
        let env = Env::from_pairs([("CORS_ALLOWED_ORIGINS", "*")]);
        assert_eq!(
            HttpConfig::from_env(&env, "P", 1).unwrap_err().variable,
            "CORS_ALLOWED_ORIGINS"
        );
        let env = Env::from_pairs([(
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, http://localhost:3000",
        )]);
        let config = HttpConfig::from_env(&env, "P", 1).unwrap();
        assert_eq!(config.cors_origins.len(), 2);
        let env = Env::from_pairs([("CORS_ALLOWED_ORIGINS", "a.example")]);
        assert!(HttpConfig::from_env(&env, "P", 1).is_err());
    }

    #[test]
    fn limits_are_on_by_default_and_validated() {
        let config = HttpConfig::from_env(&Env::from_pairs::<&str, &str>([]), "P", 1).unwrap();
        assert_eq!(config.limits.max_concurrent, 1024);
        assert!((config.limits.rate_per_second - DEFAULT_RATE_PER_SECOND).abs() < f64::EPSILON);
        assert!((config.limits.burst - 2.0 * DEFAULT_RATE_PER_SECOND).abs() < f64::EPSILON);
        let off = Env::from_pairs([("RATE_LIMIT_PER_SECOND", "0")]);
        let limits = HttpConfig::from_env(&off, "P", 1).unwrap().limits;
        assert!(limits.rate_per_second.abs() < f64::EPSILON);
        let env = Env::from_pairs([
            ("RATE_LIMIT_PER_SECOND", "20"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ]);
        let limits = HttpConfig::from_env(&env, "P", 1).unwrap().limits;
        assert!((limits.burst - 40.0).abs() < f64::EPSILON);
        assert_eq!(limits.trusted_proxies.len(), 2);
        for (var, value) in [
            ("RATE_LIMIT_PER_SECOND", "-1"),
            ("RATE_LIMIT_PER_SECOND", "NaN"),
            ("RATE_LIMIT_BURST", "0.5"),
            ("TRUSTED_PROXIES", "10.0.0.0/40"),
            ("TRUSTED_PROXIES", "proxy.local"),
            ("MAX_CONCURRENT_REQUESTS", "0"),
            ("MAX_HEADER_BYTES", "0"),
            ("MAX_HEADER_BYTES", "1048577"),
        ] {
            let err = HttpConfig::from_env(&Env::from_pairs([(var, value)]), "P", 1).unwrap_err();
            assert_eq!(err.variable, var, "{var}={value}");
        }
    }

    #[test]
    fn zero_limits_are_refused() {
        for var in [
            "MAX_BODY_BYTES",
            "MAX_INTERNAL_BODY_BYTES",
            "REQUEST_TIMEOUT_MS",
        ] {
            let err = HttpConfig::from_env(&Env::from_pairs([(var, "0")]), "P", 1).unwrap_err();
            assert_eq!(err.variable, var);
        }
    }
}
