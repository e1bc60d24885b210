//! `--token-auth-file`: upstream's static token file, a CSV of
//! `token,user,uid[,"group1,group2"]` read once at start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{AuthnError, TokenAuthenticator};
use crate::user::UserInfo;

/// The token file could not be read or is malformed (the server does not start).
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("reading token file {path:?}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record with fewer than three columns (upstream's message).
    #[error(
        "token file {path:?} must have at least 3 columns (token, user name, user uid), found {found}"
    )]
    Columns {
        /// The file.
        path: PathBuf,
        /// How many columns the record had.
        found: usize,
    },
    /// A quoted field that does not end.
    #[error("token file {path:?}: line {line}: unterminated quoted field")]
    Quote {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
    },
}

/// The tokens of a token file.
#[derive(Debug, Clone, Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    /// Reads `path`. Blocking file I/O.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TokenFileError> {
        let mut tokens = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let record = split_csv(line).ok_or_else(|| TokenFileError::Quote {
                path: path.to_owned(),
                line: index + 1,
            })?;
            if record.len() < 3 {
                return Err(TokenFileError::Columns {
                    path: path.to_owned(),
                    found: record.len(),
                });
            }
            if record[0].is_empty() {
                tracing::warn!(path = %path.display(), line = index + 1, "empty token in the token file");
                continue;
            }
            let groups = record
                .get(3)
                .filter(|g| !g.is_empty())
                .map(|g| g.split(',').map(|g| g.trim().to_owned()).collect())
                .unwrap_or_default();
            let user = UserInfo {
                name: record[1].clone(),
                uid: record[2].clone(),
                groups,
                ..UserInfo::default()
            };
            if tokens.insert(record[0].clone(), user).is_some() {
                tracing::warn!(path = %path.display(), line = index + 1, "duplicate token in the token file");
            }
        }
        Ok(TokenFile { tokens })
    }
}

/// One CSV record as Go's `encoding/csv` reads it with `TrimLeadingSpace`: comma-separated,
/// fields optionally double-quoted with `""` for a quote. `None` for an open quote.
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    '"' => break,
                    c => field.push(c),
                }
            }
            // Anything between the closing quote and the comma is kept, as Go's lazy mode.
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Some(fields);
        }
    }
}

#[async_trait]
impl TokenAuthenticator for TokenFile {
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        Ok(self.tokens.get(token).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_upstreams_csv() {
        let path = Path::new("tokens.csv");
        let file = TokenFile::parse(
            path,
            "t1,alice,uid-a,\"dev,ops\"\n\n t2, bob,uid-b\n\"t,3\",carol,uid-c,\n",
        )
        .unwrap();
        let alice = file.authenticate_token("t1").await.unwrap().unwrap();
        assert_eq!(
            (
                alice.name.as_str(),
                alice.uid.as_str(),
                alice.groups.clone()
            ),
            ("alice", "uid-a", vec!["dev".to_owned(), "ops".to_owned()])
        );
        let bob = file.authenticate_token("t2").await.unwrap().unwrap();
        assert_eq!((bob.name.as_str(), bob.groups.len()), ("bob", 0));
        assert_eq!(
            file.authenticate_token("t,3").await.unwrap().unwrap().name,
            "carol"
        );
        assert_eq!(file.authenticate_token("t4").await.unwrap(), None);

        let err = TokenFile::parse(path, "t1,alice\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"token file "tokens.csv" must have at least 3 columns (token, user name, user uid), found 2"#
        );
        assert!(TokenFile::parse(path, "\"t1,alice,uid\n").is_err());
    }
}
