//! Signing the registry's envelopes: a JWS (RFC 7515) with the EdDSA algorithm (Ed25519,
//! RFC 8037) over the envelope's `header` and `message`, its payload detached (RFC 7515
//! appendix F): the `signature` field is `BASE64URL(protected)..BASE64URL(signature)`.
//!
//! The signed payload is the canonical JSON of `{"header": ..., "message": ...}`: object
//! keys sorted, no whitespace (the envelopes carry no floating-point numbers, so this is
//! RFC 8785's form), so a receiver that parses the body can rebuild it byte for byte.
//! The public key is published at `/.well-known/jwks.json`, named by its RFC 7638
//! thumbprint (`kid`).
//!
//! The private key is 32 random bytes, hex, in `DATA/registry/ed25519.key`, created by
//! the first server that needs it (exclusive create, so two servers starting together
//! agree on one key).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde_json::{json, Value};

/// The server's signing key.
pub struct Signer {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("registry signing key {path}: {problem}")]
    File { path: PathBuf, problem: String },
}

impl Signer {
    pub fn from_seed(seed: [u8; 32]) -> Signer {
        let key = SigningKey::from_bytes(&seed);
        let kid = thumbprint(&key.verifying_key());
        Signer { key, kid }
    }

    /// The key file under `data_dir`, created with a new random key when missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Signer, KeyError> {
        let path = data_dir.join("registry").join("ed25519.key");
        let err = |problem: String| KeyError::File { path: path.clone(), problem };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let mut seed = [0u8; 32];
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                getrandom::getrandom(&mut seed).map_err(|e| err(e.to_string()))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
                }
                f.write_all(hex::encode(seed).as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| err(e.to_string()))?;
                return Ok(Signer::from_seed(seed));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e.to_string())),
        }
        // Another server may be writing it this instant: read again briefly.
        for _ in 0..20 {
            let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
            if hex::decode_to_slice(text.trim(), &mut seed).is_ok() {
                return Ok(Signer::from_seed(seed));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(err("not 64 hex digits".into()))
    }

    /// The key's id: its RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK of the public key.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": B64.encode(self.key.verifying_key().as_bytes()),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }

    /// The detached JWS over `header` and `message`.
    pub fn sign(&self, header: &Value, message: &Value) -> String {
        let protected = B64.encode(canonical(&json!({"alg": "EdDSA", "kid": self.kid})));
        let payload = B64.encode(payload(header, message));
        let signature = self.key.sign(format!("{protected}.{payload}").as_bytes());
        format!("{protected}..{}", B64.encode(signature.to_bytes()))
    }
}

/// Whether `signature` is a valid detached JWS over `header` and `message` by the key
/// whose JWK `x` (base64url) is given. For receivers, and the tests.
pub fn verify(x: &str, signature: &str, header: &Value, message: &Value) -> bool {
    let Some((protected, sig)) = signature.split_once("..") else { return false };
    let Ok(x) = B64.decode(x) else { return false };
    let Ok(x) = <[u8; 32]>::try_from(x.as_slice()) else { return false };
    let Ok(key) = VerifyingKey::from_bytes(&x) else { return false };
    let Ok(header_json) = B64.decode(protected) else { return false };
    let alg_ok = serde_json::from_slice::<Value>(&header_json).is_ok_and(|h| h["alg"] == "EdDSA");
    let Ok(sig) = B64.decode(sig) else { return false };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig) else { return false };
    let input = format!("{protected}.{}", B64.encode(payload(header, message)));
    alg_ok && key.verify(input.as_bytes(), &sig).is_ok()
}

fn payload(header: &Value, message: &Value) -> String {
    canonical(&json!({"header": header, "message": message}))
}

fn thumbprint(key: &VerifyingKey) -> String {
    use sha2::Digest;
    let members = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, B64.encode(key.as_bytes()));
    B64.encode(sha2::Sha256::digest(members.as_bytes()))
}

/// JSON with object keys sorted and no whitespace.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_tampered_envelope_does_not() {
        let signer = Signer::from_seed([7; 32]);
        let x = signer.jwk()["x"].as_str().unwrap().to_string();
        let header = json!({"message_id": "1", "action": "notify"});
        let message = json!({"b": [1, {"z": 1, "a": "é"}], "a": null});
        let sig = signer.sign(&header, &message);
        assert!(verify(&x, &sig, &header, &message));
        // Key order on the wire does not matter; content does.
        let reordered: Value = serde_json::from_str(r#"{"a":null,"b":[1,{"a":"é","z":1}]}"#).unwrap();
        assert!(verify(&x, &sig, &header, &reordered));
        assert!(!verify(&x, &sig, &header, &json!({"b": [2, {"z": 1, "a": "é"}], "a": null})));
        assert!(!verify(&x, &sig, &json!({"message_id": "2", "action": "notify"}), &message));
        let other = Signer::from_seed([8; 32]).jwk()["x"].as_str().unwrap().to_string();
        assert!(!verify(&other, &sig, &header, &message));
        assert!(!verify(&x, "garbage", &header, &message));
    }

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load_or_create(dir.path()).unwrap();
        let b = Signer::load_or_create(dir.path()).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.jwk(), b.jwk());
        assert_eq!(canonical(&json!({"b": 1, "a": [true, "x"]})), r#"{"a":[true,"x"],"b":1}"#);
    }
}
