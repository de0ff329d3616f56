//! `kjp serve`'s settings, in layers: built-in defaults, then a TOML file (`--config
//! kjp.toml`), then `KJP_*` environment variables, then command-line flags; each layer
//! overrides the one before, key by key. An unknown key or a bad value is refused with
//! where it came from (`kjp.toml:3: ...`, `KJP_PORT=...: ...`), never silently ignored.
//! docs/operations.md lists every key.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use kjp_server::LogFormat;
use serde::Deserialize;

/// `kjp serve`'s arguments: the file, and the flags that override everything.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Settings file (TOML); `KJP_*` environment variables override it and flags override both.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: Layer,
}

/// One layer of settings: every key optional. The file's keys, the flags (`--port`), and
/// the environment (`KJP_PORT`) are the same names.
#[derive(Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Address to listen on [default: 0.0.0.0].
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// Port to listen on [default: 8080].
    #[arg(long)]
    pub port: Option<u16>,
    /// Requests per minute allowed per client address; 0 turns the limit off [default: 60].
    #[arg(long, visible_alias = "rate-limit", value_name = "N")]
    pub rate_per_minute: Option<u32>,
    /// Seconds a client has to send a request's headers; also closes idle connections [default: 10].
    #[arg(long, value_name = "SECS")]
    pub header_timeout_secs: Option<Seconds>,
    /// Seconds allowed for a whole request once its headers are in [default: 15].
    #[arg(long, value_name = "SECS")]
    pub request_timeout_secs: Option<Seconds>,
    /// Largest request body accepted, in bytes [default: 4096].
    #[arg(long, value_name = "BYTES")]
    pub body_limit_bytes: Option<usize>,
    /// Largest agency file an API client may upload, in bytes [default: 1073741824].
    #[arg(long, value_name = "BYTES")]
    pub upload_limit_bytes: Option<usize>,
    /// Rebuild the index from the database every this many seconds (SIGHUP rebuilds it now) [default: 60].
    #[arg(long, value_name = "SECS")]
    pub reload_secs: Option<Seconds>,
    /// Days a complaint may stay open before the staff console shows it overdue [default: 14].
    #[arg(long, value_name = "DAYS")]
    pub complaint_sla_days: Option<u32>,
    /// Log lines as `json` (one object per line) or `text` [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// The database (as KJP_DATABASE_URL) [default: sqlite:kjp.db].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Load balancers whose X-Forwarded-For names the client, as addresses or networks,
    /// comma-separated (10.0.0.0/8,192.168.1.5) [default: none: the header is ignored].
    #[arg(long, value_name = "NETS")]
    pub trusted_proxies: Option<Proxies>,
}

impl fmt::Debug for Layer {
    // The database URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("database_url", &self.database_url.as_ref().map(|_| "<hidden>"))
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// A whole number of seconds, at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n: u64 = s.trim().parse().map_err(|_| format!("{s:?} is not a whole number of seconds"))?;
        Seconds::new(n)
    }
}

impl Seconds {
    fn new(n: u64) -> Result<Seconds, String> {
        if n == 0 {
            return Err("must be at least 1 second".into());
        }
        Ok(Seconds(n))
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Seconds::new(n).map_err(serde::de::Error::custom)
    }
}

/// Addresses and networks (`10.0.0.0/8`, `192.168.1.5`, `2001:db8::/32`): on the command
/// line and in `KJP_TRUSTED_PROXIES` comma-separated, in the file a list of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies(pub Vec<IpNet>);

impl Proxies {
    fn parse_one(s: &str) -> Result<IpNet, String> {
        let s = s.trim();
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("{s:?} is not an address or a network (10.0.0.0/8, 192.168.1.5)"))
    }
}

impl FromStr for Proxies {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts = s.split(',').filter(|p| !p.trim().is_empty());
        parts.map(Proxies::parse_one).collect::<Result<_, _>>().map(Proxies)
    }
}

impl<'de> Deserialize<'de> for Proxies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        list.iter()
            .map(|s| Proxies::parse_one(s))
            .collect::<Result<_, _>>()
            .map(Proxies)
            .map_err(serde::de::Error::custom)
    }
}

/// What `kjp serve` runs with, every key resolved.
#[derive(Clone, PartialEq)]
pub struct Settings {
    pub bind: IpAddr,
    pub port: u16,
    pub rate_per_minute: u32,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    pub upload_limit_bytes: usize,
    pub reload: Duration,
    pub complaint_sla_days: u32,
    pub log_format: LogFormat,
    pub database_url: String,
    pub trusted_proxies: Vec<IpNet>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("rate_per_minute", &self.rate_per_minute)
            .field("log_format", &self.log_format)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// A setting refused, with where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}:{line}: {message}")]
    File { file: String, line: usize, message: String },
    #[error("{var}={value:?}: {message}")]
    Env { var: String, value: String, message: String },
}

impl Layer {
    /// Reads a settings file; an unknown key or a bad value is an error naming the line.
    pub fn from_file(path: &Path) -> Result<Layer, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        Layer::parse(&file, &text)
    }

    /// Parses a settings file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Layer, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            ConfigError::File { file: file.to_owned(), line, message: e.message().trim().to_owned() }
        })
    }

    /// The `KJP_*` variables `get` knows (`std::env::var` in `kjp serve`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
        fn var<T: FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            name: &str,
        ) -> Result<Option<T>, ConfigError>
        where
            T::Err: fmt::Display,
        {
            match get(name) {
                None => Ok(None),
                Some(value) => value.trim().parse().map(Some).map_err(|e: T::Err| ConfigError::Env {
                    var: name.to_owned(),
                    message: e.to_string(),
                    value,
                }),
            }
        }
        Ok(Layer {
            bind: var(&get, "KJP_BIND")?,
            port: var(&get, "KJP_PORT")?,
            rate_per_minute: var(&get, "KJP_RATE_PER_MINUTE")?,
            header_timeout_secs: var(&get, "KJP_HEADER_TIMEOUT_SECS")?,
            request_timeout_secs: var(&get, "KJP_REQUEST_TIMEOUT_SECS")?,
            body_limit_bytes: var(&get, "KJP_BODY_LIMIT_BYTES")?,
            upload_limit_bytes: var(&get, "KJP_UPLOAD_LIMIT_BYTES")?,
            reload_secs: var(&get, "KJP_RELOAD_SECS")?,
            complaint_sla_days: var(&get, "KJP_COMPLAINT_SLA_DAYS")?,
            log_format: var(&get, "KJP_LOG_FORMAT")?,
            database_url: get("KJP_DATABASE_URL"),
            trusted_proxies: var(&get, "KJP_TRUSTED_PROXIES")?,
        })
    }

    /// `over`'s keys where it has them, else this layer's.
    pub fn overridden_by(self, over: Layer) -> Layer {
        Layer {
            bind: over.bind.or(self.bind),
            port: over.port.or(self.port),
            rate_per_minute: over.rate_per_minute.or(self.rate_per_minute),
            header_timeout_secs: over.header_timeout_secs.or(self.header_timeout_secs),
            request_timeout_secs: over.request_timeout_secs.or(self.request_timeout_secs),
            body_limit_bytes: over.body_limit_bytes.or(self.body_limit_bytes),
            upload_limit_bytes: over.upload_limit_bytes.or(self.upload_limit_bytes),
            reload_secs: over.reload_secs.or(self.reload_secs),
            complaint_sla_days: over.complaint_sla_days.or(self.complaint_sla_days),
            log_format: over.log_format.or(self.log_format),
            database_url: over.database_url.or(self.database_url),
            trusted_proxies: over.trusted_proxies.or(self.trusted_proxies),
        }
    }

    /// Every key not set takes its default.
    pub fn resolve(self) -> Settings {
        let server = kjp_server::Config::default();
        let secs = |s: Option<Seconds>, default: Duration| s.map_or(default, |s| Duration::from_secs(s.0));
        Settings {
            bind: self.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: self.port.unwrap_or(8080),
            rate_per_minute: self.rate_per_minute.unwrap_or(server.rate_per_minute),
            header_timeout: secs(self.header_timeout_secs, server.header_timeout),
            request_timeout: secs(self.request_timeout_secs, server.request_timeout),
            body_limit_bytes: self.body_limit_bytes.unwrap_or(server.body_limit),
            upload_limit_bytes: self.upload_limit_bytes.unwrap_or(server.upload_limit),
            reload: secs(self.reload_secs, Duration::from_secs(60)),
            complaint_sla_days: self.complaint_sla_days.unwrap_or(14),
            log_format: self.log_format.unwrap_or_default(),
            database_url: self.database_url.unwrap_or_else(|| "sqlite:kjp.db".into()),
            trusted_proxies: self.trusted_proxies.unwrap_or_default().0,
        }
    }
}

impl ServeArgs {
    /// Defaults, then the file, then the environment `get` reads, then the flags.
    pub fn settings(&self, get: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            Some(path) => Layer::from_file(path)?,
            None => Layer::default(),
        };
        let env = Layer::from_env(get)?;
        Ok(file.overridden_by(env).overridden_by(self.flags.clone()).resolve())
    }
}

impl Settings {
    /// The server's part.
    pub fn server(&self) -> kjp_server::Config {
        kjp_server::Config {
            rate_per_minute: self.rate_per_minute,
            header_timeout: self.header_timeout,
            request_timeout: self.request_timeout,
            body_limit: self.body_limit_bytes,
            upload_limit: self.upload_limit_bytes,
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    fn args(file: Option<&Path>, flags: Layer) -> ServeArgs {
        ServeArgs { config: file.map(Path::to_path_buf), flags }
    }

    #[test]
    fn defaults_then_file_then_environment_then_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kjp.toml");
        std::fs::write(
            &path,
            "port = 9000\nbind = \"127.0.0.1\"\nrate_per_minute = 120\nlog_format = \"json\"\n\
             reload_secs = 30\ndatabase_url = \"sqlite:/srv/kjp.db\"\n",
        )
        .expect("write");

        let none = args(None, Layer::default()).settings(env(&[])).expect("defaults");
        assert_eq!(none.port, 8080);
        assert_eq!(none.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(none.log_format, LogFormat::Text);
        assert_eq!(none.server().rate_per_minute, 60);
        assert_eq!(none.database_url, "sqlite:kjp.db");

        let file = args(Some(&path), Layer::default()).settings(env(&[])).expect("file");
        assert_eq!((file.port, file.rate_per_minute), (9000, 120));
        assert_eq!(file.bind.to_string(), "127.0.0.1");
        assert_eq!(file.log_format, LogFormat::Json);
        assert_eq!(file.reload, Duration::from_secs(30));
        assert_eq!(file.database_url, "sqlite:/srv/kjp.db");
        assert_eq!(
            file.request_timeout,
            Duration::from_secs(15),
            "a key the file leaves out keeps its default"
        );

        let vars =
            [("KJP_PORT", "9100"), ("KJP_LOG_FORMAT", "text"), ("KJP_DATABASE_URL", "postgres://kjp@db/kjp")];
        let with_env = args(Some(&path), Layer::default()).settings(env(&vars)).expect("env");
        assert_eq!((with_env.port, with_env.rate_per_minute), (9100, 120));
        assert_eq!(with_env.log_format, LogFormat::Text);
        assert_eq!(with_env.database_url, "postgres://kjp@db/kjp");

        let flags = Layer { port: Some(9200), ..Layer::default() };
        let all = args(Some(&path), flags).settings(env(&vars)).expect("flags");
        assert_eq!((all.port, all.rate_per_minute), (9200, 120));
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_names_the_file_and_line() {
        let err = Layer::parse("kjp.toml", "port = 9000\n\nprot = 9001\n").unwrap_err().to_string();
        assert!(err.starts_with("kjp.toml:3: unknown field `prot`"), "{err}");
        let err = Layer::parse("kjp.toml", "port = 9000\nbind = \"localhost:80\"\n").unwrap_err().to_string();
        assert!(err.starts_with("kjp.toml:2: "), "{err}");
        let err = Layer::parse("kjp.toml", "port = 70000\n").unwrap_err().to_string();
        assert!(err.starts_with("kjp.toml:1: "), "{err}");
        let err = Layer::parse("kjp.toml", "reload_secs = 0\n").unwrap_err().to_string();
        assert_eq!(err, "kjp.toml:1: must be at least 1 second");
        let err = Layer::parse("kjp.toml", "log_format = \"xml\"\n").unwrap_err().to_string();
        assert!(err.starts_with("kjp.toml:1: unknown variant `xml`"), "{err}");
    }

    #[test]
    fn a_bad_environment_variable_is_named_with_its_value() {
        let err = Layer::from_env(env(&[("KJP_PORT", "eighty")])).unwrap_err().to_string();
        assert!(err.starts_with("KJP_PORT=\"eighty\": "), "{err}");
        let err = Layer::from_env(env(&[("KJP_LOG_FORMAT", "xml")])).unwrap_err().to_string();
        assert_eq!(err, "KJP_LOG_FORMAT=\"xml\": unknown log format \"xml\": json or text");
        let err = Layer::from_env(env(&[("KJP_RELOAD_SECS", "0")])).unwrap_err().to_string();
        assert_eq!(err, "KJP_RELOAD_SECS=\"0\": must be at least 1 second");
    }

    #[test]
    fn trusted_proxies_come_as_a_list_in_the_file_and_comma_separated_elsewhere() {
        let nets = |s: &[&str]| s.iter().map(|n| n.parse::<IpNet>().expect("net")).collect::<Vec<_>>();
        let file =
            Layer::parse("kjp.toml", "trusted_proxies = [\"10.0.0.0/8\", \"192.168.1.5\"]\n").expect("file");
        assert_eq!(file.clone().resolve().trusted_proxies, nets(&["10.0.0.0/8", "192.168.1.5/32"]));
        let env_layer = Layer::from_env(env(&[("KJP_TRUSTED_PROXIES", "::1, 172.16.0.0/12")])).expect("env");
        let both = file.overridden_by(env_layer).resolve();
        assert_eq!(both.server().trusted_proxies, nets(&["::1/128", "172.16.0.0/12"]));
        assert_eq!(Layer::default().resolve().trusted_proxies, [], "none by default");

        let err =
            Layer::parse("kjp.toml", "\ntrusted_proxies = [\"10.0.0.0/33\"]\n").unwrap_err().to_string();
        assert!(err.starts_with("kjp.toml:2: \"10.0.0.0/33\" is not an address or a network"), "{err}");
        let err = Layer::parse("kjp.toml", "trusted_proxies = \"10.0.0.1\"\n").unwrap_err().to_string();
        assert!(err.starts_with("kjp.toml:1: "), "a list, not a string: {err}");
        let err =
            Layer::from_env(env(&[("KJP_TRUSTED_PROXIES", "10.0.0.1,lb.internal")])).unwrap_err().to_string();
        assert!(
            err.starts_with("KJP_TRUSTED_PROXIES=\"10.0.0.1,lb.internal\": \"lb.internal\" is not"),
            "{err}"
        );
    }
}
