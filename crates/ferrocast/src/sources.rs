//! Where a configuration comes from: a TOML file, overridden by `FERROCAST_*` environment
//! variables, overridden by command-line flags.
//!
//! Overrides are applied to the parsed TOML table *before* it is turned into the configuration
//! type, so a value from any source goes through the same deserialization and validation. Unknown
//! keys are rejected: in the file with the key's name and line, in the environment with the
//! variable's name, in a flag with the flag.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Prefix of every environment variable Ferrocast reads.
pub const ENV_PREFIX: &str = "FERROCAST_";
/// Environment variable naming the config file.
pub const ENV_CONFIG: &str = "FERROCAST_CONFIG";
/// Environment variable listing streams as `name=key,name2=key2`.
pub const ENV_STREAMS: &str = "FERROCAST_STREAMS";

/// Why a configuration was refused. The message names the key, variable or flag at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has the wrong type (the message
    /// carries the line and column).
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from (file path, variable or flag).
        origin: String,
        /// The parser's message, with line and column for files.
        message: String,
    },
    /// An environment variable or flag names a key that does not exist.
    #[error("{origin}: unknown configuration key `{key}`")]
    UnknownKey {
        /// The variable or flag.
        origin: String,
        /// The key it maps to.
        key: String,
    },
    /// A value is syntactically fine but not acceptable.
    #[error("invalid configuration: {0}")]
    Invalid(settings::Invalid),
}

impl From<settings::Invalid> for ConfigError {
    fn from(e: settings::Invalid) -> Self {
        ConfigError::Invalid(e)
    }
}

/// An override of one key: from an environment variable or a flag.
#[derive(Debug, Clone)]
pub struct Override {
    /// Where it came from, for error messages: `FERROCAST_LISTEN_HTTP` or `--set listen.http`.
    pub origin: String,
    /// Dotted key path, e.g. `listen.http`.
    pub key: String,
    /// The raw value; its type is taken from the key's default.
    pub value: String,
}

/// The sources of a configuration, in increasing precedence.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Config file text and its name, if any.
    pub file: Option<(String, String)>,
    /// Environment variables (all of them; only `FERROCAST_*` are read).
    pub env: Vec<(String, String)>,
    /// Key overrides from flags, already mapped to key paths.
    pub flags: Vec<Override>,
    /// Streams from `--stream NAME=KEY` flags, replacing all others when non-empty.
    pub flag_streams: Vec<(String, String)>,
}

/// Builds a configuration of type `T` from all sources: file, then environment, then flags.
/// Every scalar key of `T`'s defaults can be overridden; `T`'s own validation is the caller's.
pub fn load<T>(sources: &Sources) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut table = toml::Table::new();
    if let Some((origin, text)) = &sources.file {
        // Deserialize the file on its own first: that is where serde reports unknown keys and
        // wrong types with a line and column.
        toml::from_str::<T>(text).map_err(|e| ConfigError::Parse {
            origin: origin.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Parse {
                origin: origin.clone(),
                message: e.to_string(),
            })?;
    }

    let known = known_keys::<T>();
    let mut overrides = Vec::new();
    let mut env_streams = None;
    for (var, value) in &sources.env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if var == ENV_CONFIG {
            continue;
        }
        if var == ENV_STREAMS {
            env_streams = Some(parse_stream_list(value, var)?);
            continue;
        }
        let flat = rest.to_ascii_lowercase();
        let key = known
            .keys()
            .find(|k| k.replace('.', "_") == flat)
            .ok_or_else(|| ConfigError::UnknownKey {
                origin: var.clone(),
                key: flat.clone(),
            })?;
        overrides.push(Override {
            origin: var.clone(),
            key: key.clone(),
            value: value.clone(),
        });
    }
    overrides.extend(sources.flags.iter().cloned());

    for o in &overrides {
        let kind = known.get(&o.key).ok_or_else(|| ConfigError::UnknownKey {
            origin: o.origin.clone(),
            key: o.key.clone(),
        })?;
        let value = typed_value(kind, &o.value).map_err(|message| ConfigError::Parse {
            origin: o.origin.clone(),
            message,
        })?;
        set_path(&mut table, &o.key, value);
    }

    let streams = if !sources.flag_streams.is_empty() {
        Some(sources.flag_streams.clone())
    } else {
        env_streams
    };
    if let Some(streams) = streams {
        let list = streams
            .into_iter()
            .map(|(name, key)| {
                let mut t = toml::Table::new();
                t.insert("name".into(), toml::Value::String(name));
                t.insert("key".into(), toml::Value::String(key));
                toml::Value::Table(t)
            })
            .collect();
        table.insert("streams".into(), toml::Value::Array(list));
    }

    let origin = if overrides.is_empty() {
        sources
            .file
            .as_ref()
            .map(|(o, _)| o.clone())
            .unwrap_or_else(|| "configuration".into())
    } else {
        "configuration (after environment and flag overrides)".into()
    };
    T::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
        origin,
        message: e.to_string().trim_end().to_owned(),
    })
}

/// Parses `name=key,name2=key2`.
pub fn parse_stream_list(s: &str, origin: &str) -> Result<Vec<(String, String)>, ConfigError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| parse_stream_pair(p, origin))
        .collect()
}

/// Parses one `name=key`.
pub fn parse_stream_pair(p: &str, origin: &str) -> Result<(String, String), ConfigError> {
    match p.split_once('=') {
        Some((n, k)) if !n.is_empty() && !k.is_empty() => Ok((n.to_owned(), k.to_owned())),
        _ => Err(ConfigError::Parse {
            origin: origin.to_owned(),
            message: format!("expected NAME=KEY, got {p:?}"),
        }),
    }
}

/// The type of a scalar key, taken from its default value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Float,
    Bool,
}

/// Every overridable scalar key (dotted path) with its type, derived from the defaults so the list
/// can never drift from the struct.
fn known_keys<T: Serialize + Default>() -> BTreeMap<String, Kind> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, Kind>) {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let kind = match v {
                toml::Value::Table(t) => {
                    walk(&path, t, out);
                    continue;
                }
                toml::Value::String(_) => Kind::String,
                toml::Value::Integer(_) => Kind::Integer,
                toml::Value::Float(_) => Kind::Float,
                toml::Value::Boolean(_) => Kind::Bool,
                // Arrays (streams) have their own syntax.
                _ => continue,
            };
            out.insert(path, kind);
        }
    }
    let defaults = toml::Table::try_from(T::default()).expect("defaults serialize");
    let mut out = BTreeMap::new();
    walk("", &defaults, &mut out);
    out
}

fn typed_value(kind: &Kind, raw: &str) -> Result<toml::Value, String> {
    Ok(match kind {
        Kind::String => toml::Value::String(raw.to_owned()),
        Kind::Integer => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected an integer, got {raw:?}"))?,
        ),
        Kind::Float => toml::Value::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected a number, got {raw:?}"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(format!("expected true or false, got {raw:?}")),
        }),
    })
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("non-empty path");
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        t = entry.as_table_mut().expect("just made a table");
    }
    t.insert(last.to_owned(), value);
}
