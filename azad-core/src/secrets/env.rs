//! [`EnvSource`] (environment variables) and [`DotenvSource`] (a dotenv-style file).
//!
//! Neither has versions of its own: the version they report is a keyed digest of the value
//! (HMAC-SHA-256 under a per-process random key, 16 hex digits), so a changed value is a new
//! version (the cache notices) while the version, which audit events log, reveals nothing
//! about the value.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::source::{SecretError, SecretFuture, SecretSource, SecretValue};

/// A keyed digest of a value, safe to log: 16 hex digits of HMAC-SHA-256 under a key drawn
/// once per process.
pub(crate) fn content_version(value: &[u8]) -> String {
    static KEY: OnceLock<aws_lc_rs::hmac::Key> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        aws_lc_rs::rand::fill(&mut k).expect("system randomness");
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &k)
    });
    let tag = aws_lc_rs::hmac::sign(key, value);
    tag.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The default name mapping: ASCII letters upper-cased, every other character but digits
/// becomes `_` (`db-password` → `DB_PASSWORD`, `ConnectionStrings:Db` →
/// `CONNECTIONSTRINGS_DB`).
#[must_use]
pub fn env_var_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

type Mapping = Arc<dyn Fn(&str) -> String + Send + Sync>;

fn versioned(name: &str, version: Option<&str>, value: String) -> Result<SecretValue, SecretError> {
    let current = content_version(value.as_bytes());
    if let Some(asked) = version
        && asked != current
    {
        return Err(SecretError::not_found(name, Some(asked)));
    }
    Ok(SecretValue::new(value).with_version(current))
}

/// Secrets from environment variables: secret `name` is variable `{prefix}{mapping(name)}`
/// (default mapping [`env_var_name`], no prefix), read at each call.
///
/// An unset or empty variable is [`SecretError::NotFound`]; a value that is not UTF-8 is
/// [`SecretError::InvalidResponse`].
///
/// # Example
///
/// ```
/// use azad_core::secrets::{EnvSource, SecretSource};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let source = EnvSource::from_pairs([("MYAPP_DB_PASSWORD", "hunter2")]).with_prefix("MYAPP_");
/// assert_eq!(source.get("db-password", None).await.unwrap().expose(), "hunter2");
/// # });
/// ```
#[derive(Clone)]
pub struct EnvSource {
    prefix: String,
    mapping: Mapping,
    fixed: Option<Arc<HashMap<String, String>>>,
    name: String,
}

impl fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSource")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("fixed", &self.fixed.as_ref().map(|m| m.len()))
            .finish_non_exhaustive()
    }
}

impl Default for EnvSource {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvSource {
    /// The process environment, no prefix, the default mapping.
    #[must_use]
    pub fn new() -> Self {
        Self { prefix: String::new(), mapping: Arc::new(env_var_name), fixed: None, name: "env".to_owned() }
    }

    /// A fixed set of variables instead of the process environment (tests, examples, a
    /// configuration snapshot).
    #[must_use]
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self { fixed: Some(Arc::new(map)), ..Self::new() }
    }

    /// Prepends `prefix` to every variable name (`MYAPP_`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Maps a secret name to a variable name (before the prefix).
    #[must_use]
    pub fn with_mapping(mut self, mapping: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.mapping = Arc::new(mapping);
        self
    }

    /// Names this source in audit events and errors (default `env`).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The variable secret `name` is read from.
    #[must_use]
    pub fn variable_name(&self, name: &str) -> String {
        format!("{}{}", self.prefix, (self.mapping)(name))
    }

    fn read(&self, name: &str, version: Option<&str>) -> Result<SecretValue, SecretError> {
        let variable = self.variable_name(name);
        let value = match &self.fixed {
            Some(map) => map.get(&variable).cloned(),
            None => match std::env::var(&variable) {
                Ok(v) => Some(v),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SecretError::invalid_response(format!("variable {variable} is not UTF-8")));
                }
            },
        };
        match value {
            Some(v) if !v.is_empty() => versioned(name, version, v),
            _ => Err(SecretError::not_found(name, version)),
        }
    }
}

impl SecretSource for EnvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
        Box::pin(async move { self.read(name, version) })
    }
}

/// Secrets from a dotenv-style file, read again at each call (so an edited or replaced file
/// is seen; put a [`SecretCache`](super::SecretCache) in front).
///
/// Secret `name` is the key `name` if the file has it, else `{prefix}{mapping(name)}` as for
/// [`EnvSource`]. The grammar (parsed here rather than with `dotenvy`, which expands `$VAR`
/// from the process environment: a secret must not change with unrelated variables):
///
/// - one `KEY=VALUE` per line, an optional `export ` before the key; blank lines and lines
///   starting with `#` are ignored; keys are `[A-Za-z_][A-Za-z0-9_.-]*`;
/// - `'single quoted'`: literal, may span lines; `"double quoted"`: may span lines, with the
///   escapes `\n`, `\r`, `\t`, `\"`, `\\`, `\$`; unquoted: trimmed, ends at ` #` (a comment);
/// - no variable expansion, no command substitution; a later key overrides an earlier one.
///
/// A missing file is [`SecretError::Misconfigured`], an unreadable one
/// [`SecretError::Denied`], a syntax error [`SecretError::InvalidResponse`] naming the line
/// (never its content).
///
/// # Example
///
/// ```
/// use azad_core::secrets::{DotenvSource, SecretSource};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("azad-doc-{}.env", std::process::id()));
/// std::fs::write(&path, "# app secrets\nexport DB_PASSWORD='hunter2'\nAPI_KEY=k3y # rotated monthly\n").unwrap();
/// let source = DotenvSource::new(&path);
/// assert_eq!(source.get("db-password", None).await.unwrap().expose(), "hunter2");
/// assert_eq!(source.get("API_KEY", None).await.unwrap().expose(), "k3y");
/// # std::fs::remove_file(&path).unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct DotenvSource {
    path: PathBuf,
    prefix: String,
    mapping: Mapping,
    name: String,
}

impl fmt::Debug for DotenvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DotenvSource")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl DotenvSource {
    /// The file at `path`.
    #[must_use]
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
            prefix: String::new(),
            mapping: Arc::new(env_var_name),
            name: "dotenv".to_owned(),
        }
    }

    /// Prepends `prefix` to mapped key names.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Maps a secret name to a key (before the prefix), when the file has no key `name`.
    #[must_use]
    pub fn with_mapping(mut self, mapping: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.mapping = Arc::new(mapping);
        self
    }

    /// Names this source in audit events and errors (default `dotenv`).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    async fn read(&self, name: &str, version: Option<&str>) -> Result<SecretValue, SecretError> {
        let text = match tokio::fs::read(&self.path).await {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| SecretError::invalid_response(format!("{} is not UTF-8", self.path.display())))?,
            Err(e) => return Err(io_error(name, &self.path, &e)),
        };
        let mut entries = parse_dotenv(&text).map_err(|line| {
            SecretError::invalid_response(format!("{}: syntax error on line {line}", self.path.display()))
        })?;
        let mapped = format!("{}{}", self.prefix, (self.mapping)(name));
        let value = entries.remove(name).or_else(|| entries.remove(&mapped));
        match value {
            Some(v) if !v.is_empty() => versioned(name, version, v),
            _ => Err(SecretError::not_found(name, version)),
        }
    }
}

impl SecretSource for DotenvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
        Box::pin(self.read(name, version))
    }
}

/// An I/O error reading a secret file, classified.
pub(crate) fn io_error(name: &str, path: &Path, e: &std::io::Error) -> SecretError {
    match e.kind() {
        std::io::ErrorKind::NotFound => SecretError::misconfigured(format!("{} does not exist", path.display())),
        std::io::ErrorKind::PermissionDenied => {
            SecretError::denied(name, format!("{} is not readable by this process", path.display()))
        }
        kind => SecretError::unavailable(format!("cannot read {}: {kind}", path.display())),
    }
}

/// Parses a dotenv file (grammar in [`DotenvSource`]); `Err(line)` (1-based) on a syntax
/// error.
pub(crate) fn parse_dotenv(text: &str) -> Result<HashMap<String, String>, usize> {
    let mut out = HashMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let line_no = index + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, rest) = line.split_once('=').ok_or(line_no)?;
        let key = key.trim_end();
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid_key {
            return Err(line_no);
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                // The quoted value may span lines.
                let mut body = rest[1..].to_owned();
                let end = loop {
                    if let Some(end) = closing_quote(&body, quote) {
                        break end;
                    }
                    let (_, next) = lines.next().ok_or(line_no)?;
                    body.push('\n');
                    body.push_str(next);
                };
                let after = body[end + 1..].trim();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(line_no);
                }
                let inner = &body[..end];
                if quote == '"' { unescape(inner).ok_or(line_no)? } else { inner.to_owned() }
            }
            _ => {
                let value = match rest.find(" #").or_else(|| rest.find("\t#")) {
                    Some(comment) => &rest[..comment],
                    None => rest,
                };
                value.trim().to_owned()
            }
        };
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// The byte index of the closing `quote` in `body` (a `\"` does not close a double quote).
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if quote == '"' && escaped {
            escaped = false;
            continue;
        }
        if quote == '"' && c == '\\' {
            escaped = true;
            continue;
        }
        if c == quote {
            return Some(i);
        }
    }
    None
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '"' => '"',
            '\\' => '\\',
            '$' => '$',
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_dotenv_grammar() {
        let text = "\n# comment\nexport A=1\nB = two words # comment\nC='lit $HOME \\n'\nD=\"esc\\n\\\"q\\\" \\$X\"\nE=\"multi\nline\"\nF=\nG=a#b\nA=override\n";
        let map = parse_dotenv(text).unwrap();
        assert_eq!(map["A"], "override");
        assert_eq!(map["B"], "two words");
        assert_eq!(map["C"], "lit $HOME \\n");
        assert_eq!(map["D"], "esc\n\"q\" $X");
        assert_eq!(map["E"], "multi\nline");
        assert_eq!(map["F"], "");
        assert_eq!(map["G"], "a#b");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(parse_dotenv("A=1\nno equals sign\n"), Err(2));
        assert_eq!(parse_dotenv("1A=x"), Err(1));
        assert_eq!(parse_dotenv("A='unterminated\nB=2"), Err(1));
        assert_eq!(parse_dotenv("A=\"bad \\q escape\""), Err(1));
        assert_eq!(parse_dotenv("A='x' trailing"), Err(1));
    }

    #[test]
    fn content_versions_are_stable_and_differ() {
        assert_eq!(content_version(b"a"), content_version(b"a"));
        assert_ne!(content_version(b"a"), content_version(b"b"));
        assert_eq!(content_version(b"a").len(), 16);
    }

    #[test]
    fn default_mapping() {
        assert_eq!(env_var_name("db-password"), "DB_PASSWORD");
        assert_eq!(env_var_name("ConnectionStrings:Db"), "CONNECTIONSTRINGS_DB");
    }
}
