//! Staff passwords: argon2id hashes in PHC string form (the `argon2` crate's default
//! parameters: 19 MiB, two passes), computed in bounded memory.
//!
//! Every hash needs 19 MiB of working memory. Allocated afresh per sign-in, that memory
//! stayed with the allocator's per-thread arenas: in the soak a server grew by about
//! 19 MiB a sign-in, to 600 MB, and a burst of sign-ins could claim hundreds of MB at
//! once. So the server runs at most one hash per core at a time ([`hash`], [`verify`]),
//! and every hash works in an area taken from a small pool, allocated once and reused.

use std::sync::{Mutex, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Working areas for hashes, at most one per core kept.
struct Pool {
    slots: usize,
    permits: tokio::sync::Semaphore,
    areas: Mutex<Vec<Vec<Block>>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        Pool { slots, permits: tokio::sync::Semaphore::new(slots), areas: Mutex::new(Vec::new()) }
    })
}

/// Runs `f` on a working area of at least `blocks` blocks from the pool.
fn with_area<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let pool = pool();
    let mut area = pool.areas.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
    if area.len() < blocks {
        area.resize(blocks, Block::default());
    }
    let out = f(&mut area);
    let mut areas = pool.areas.lock().unwrap_or_else(|e| e.into_inner());
    if areas.len() < pool.slots {
        areas.push(area);
    }
    out
}

/// An argon2id hash of `password` in PHC string form, with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the operating system's random source");
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_area(params.block_count(), |area| {
        argon.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, area)
    })
    .expect("argon2 with default parameters and a 16-byte salt");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("default parameters"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("32 bytes is a valid output")),
    }
    .to_string()
}

/// Whether `password` matches a stored hash (with the parameters the hash names); a
/// malformed hash matches nothing. The comparison takes constant time.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let hashed = with_area(params.block_count(), |area| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, area)
    });
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

/// [`hash_password`] off the async runtime, waiting for a free slot.
pub async fn hash(password: String) -> Option<String> {
    let _permit = pool().permits.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || hash_password(&password)).await.ok()
}

/// [`verify_password`] off the async runtime, waiting for a free slot.
pub async fn verify(password: String, hash: String) -> bool {
    let Ok(_permit) = pool().permits.acquire().await else { return false };
    tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};

    use super::*;

    #[test]
    fn hashes_are_standard_argon2id_and_verify_both_ways() {
        let ours = hash_password("correct horse");
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        assert_ne!(ours, hash_password("correct horse"), "a fresh salt each time");
        // The argon2 crate's own verifier accepts ours, and ours accepts the crate's.
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &SaltString::encode_b64(b"0123456789abcdef").expect("salt"))
            .expect("hash")
            .to_string();
        assert!(verify_password("correct horse", &theirs));
        assert!(verify_password("correct horse", &ours));
        assert!(!verify_password("correct horsf", &ours));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(!verify_password("correct horse", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"), "no output");
    }

    #[test]
    fn other_parameters_are_verified_with_the_ones_the_hash_names() {
        let params = Params::new(8, 1, 1, Some(32)).expect("params");
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw", &SaltString::encode_b64(b"saltsaltsalt").expect("salt"))
            .expect("hash")
            .to_string();
        assert!(small.contains("m=8,t=1,p=1"), "{small}");
        assert!(verify_password("pw", &small));
        assert!(!verify_password("pW", &small));
    }

    #[test]
    fn the_pool_keeps_no_more_areas_than_slots() {
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| assert!(verify_password("pw", &hash_password("pw"))));
            }
        });
        let pool = pool();
        let kept = pool.areas.lock().expect("lock").len();
        assert!((1..=pool.slots).contains(&kept), "{kept} areas kept for {} slots", pool.slots);
    }
}
