//! The server's own secret key, kept in a file beside the database (or
//! wherever `--secret-key-file` says), never in it: a database dump alone
//! can then neither forge the server's signatures nor read what it
//! encrypts. Every node of one deployment must use the same file.
//!
//! The file holds one line, `latchkey-secret-key-v1:<base64 of 32 random
//! bytes>`. Purposes never share key material: each gets a subkey derived
//! with HMAC-SHA-256 under its own label.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const PREFIX: &str = "latchkey-secret-key-v1:";
const KEY_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the secret key file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot create the secret key file {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("{} is not a latchkey secret key file (expected one line starting with {PREFIX:?} and 32 bytes of base64)", path.display())]
    Malformed { path: PathBuf },
}

/// The server key. Its id is derived from it, so a key cannot be paired
/// with the wrong id, and the id (never the key) may be logged and stored.
pub struct ServerKey {
    id: String,
    bytes: Zeroizing<[u8; KEY_BYTES]>,
}

impl ServerKey {
    /// Reads the key at `path`, creating it (mode 0600) when no file is
    /// there. Two nodes starting at once on a shared directory end up with
    /// the same key: the file appears complete or not at all.
    pub fn load_or_create(path: &Path) -> Result<(Self, Created), KeyFileError> {
        match fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse(path, &text)?, Created::No)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let fresh = Self::generate();
                match fresh.write_new(path) {
                    Ok(()) => Ok((fresh, Created::Yes)),
                    // Another process won the race: use its key.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let text =
                            fs::read_to_string(path).map_err(|source| KeyFileError::Read {
                                path: path.to_owned(),
                                source,
                            })?;
                        Ok((Self::parse(path, &text)?, Created::No))
                    }
                    Err(source) => Err(KeyFileError::Create {
                        path: path.to_owned(),
                        source,
                    }),
                }
            }
            Err(source) => Err(KeyFileError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: Zeroizing<[u8; KEY_BYTES]>) -> Self {
        let digest = Sha256::new()
            .chain_update(b"latchkey key id\0")
            .chain_update(bytes.as_ref())
            .finalize();
        let id = URL_SAFE_NO_PAD.encode(&digest[..6]);
        Self { id, bytes }
    }

    fn parse(path: &Path, text: &str) -> Result<Self, KeyFileError> {
        let malformed = || KeyFileError::Malformed {
            path: path.to_owned(),
        };
        let encoded = text.trim().strip_prefix(PREFIX).ok_or_else(malformed)?;
        let decoded = Zeroizing::new(STANDARD.decode(encoded).map_err(|_| malformed())?);
        let bytes: [u8; KEY_BYTES] = decoded.as_slice().try_into().map_err(|_| malformed())?;
        Ok(Self::from_bytes(Zeroizing::new(bytes)))
    }

    /// Writes the key to a temporary file and links it into place, which
    /// fails if a file is there already.
    fn write_new(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{:016x}.tmp", OsRng.next_u64()));
        let temporary = PathBuf::from(temporary);
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)?;
            let line = Zeroizing::new(format!(
                "{PREFIX}{}\n",
                STANDARD.encode(self.bytes.as_ref())
            ));
            file.write_all(line.as_bytes())?;
            file.sync_all()?;
            fs::hard_link(&temporary, path)
        })();
        let _ = fs::remove_file(&temporary);
        written
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The subkey for one purpose.
    pub fn subkey(&self, purpose: &str) -> Subkey {
        let mut mac = HmacSha256::new_from_slice(self.bytes.as_ref()).expect("any key length");
        mac.update(b"latchkey subkey\0");
        mac.update(purpose.as_bytes());
        Subkey(Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    /// A value the database keeps to tell, at the next start, whether a node
    /// has the key the data was written with.
    pub fn check_value(&self) -> [u8; 32] {
        self.subkey("key check").sign(b"latchkey")
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerKey({}, <redacted>)", self.id)
    }
}

/// Whether [`ServerKey::load_or_create`] made the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    No,
}

/// Key material for one purpose (signing one kind of value).
pub struct Subkey(Zeroizing<[u8; 32]>);

impl Subkey {
    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        self.mac(data).finalize().into_bytes().into()
    }

    /// Whether `tag` (possibly truncated, at least 16 bytes) is the
    /// signature of `data`; constant-time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        tag.len() >= 16 && self.mac(data).verify_truncated_left(tag).is_ok()
    }

    /// The raw bytes, for use as an encryption key.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.0.as_ref()).expect("any key length");
        mac.update(data);
        mac
    }
}

impl fmt::Debug for Subkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subkey(<redacted>)")
    }
}

/// Whether others than the owner may read the file: worth a warning.
pub fn readable_by_others(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o077 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/secret.key");
        let (created, how) = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(how, Created::Yes);
        let (loaded, how) = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(how, Created::No);
        assert_eq!(created.id(), loaded.id());
        assert_eq!(created.check_value(), loaded.check_value());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!readable_by_others(&path));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn different_keys_have_different_ids_and_checks() {
        let (a, b) = (ServerKey::generate(), ServerKey::generate());
        assert_ne!(a.id(), b.id());
        assert_ne!(a.check_value(), b.check_value());
        assert!(!format!("{a:?}").contains(&STANDARD.encode(a.bytes.as_ref())));
    }

    #[test]
    fn a_malformed_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        for text in [
            "",
            "hello",
            "latchkey-secret-key-v1:AAAA",
            "latchkey-secret-key-v1:!!",
        ] {
            fs::write(&path, text).unwrap();
            let e = ServerKey::load_or_create(&path).unwrap_err();
            assert!(e.to_string().contains("secret.key"), "{e}");
        }
    }

    #[test]
    fn subkeys_sign_and_verify_per_purpose() {
        let key = ServerKey::generate();
        let (a, b) = (key.subkey("a"), key.subkey("b"));
        let tag = a.sign(b"data");
        assert!(a.verify(b"data", &tag));
        assert!(a.verify(b"data", &tag[..16]), "truncated tags verify");
        assert!(!a.verify(b"data", &tag[..15]), "but not too short");
        assert!(!a.verify(b"datA", &tag));
        assert!(!b.verify(b"data", &tag));
    }

    #[test]
    fn nodes_racing_to_create_the_key_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| ServerKey::load_or_create(&path).unwrap().0.id().to_owned())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }
}
