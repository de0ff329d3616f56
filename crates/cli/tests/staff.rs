//! `kjp user add` and `kjp audit verify`, through the binary.

use std::path::Path;
use std::process::{Command, Output};

fn kjp(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kjp"))
        .args(args)
        .env("KJP_DATABASE_URL", format!("sqlite:{}", db.display()))
        .output()
        .expect("run kjp")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn user_add_prints_a_password_and_audit_verify_catches_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kjp.db");
    let out = kjp(&db, &["user", "add", "--username", "admin", "--role", "admin"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    let password = printed.split("password: ").nth(1).expect("a password").split_whitespace().next().unwrap();
    assert_eq!(password.len(), 16, "{printed}");

    for (args, message) in [
        (&["user", "add", "--username", "admin", "--role", "admin"][..], "is taken"),
        (&["user", "add", "--username", "pos", "--role", "post"][..], "needs --scope kecamatan"),
        (
            &["user", "add", "--username", "pos", "--role", "post", "--scope", "31.71.99"][..],
            "not one of Jakarta's 44",
        ),
        (&["user", "add", "--username", "x", "--role", "admin"][..], "3 to 32 characters"),
        (&["user", "add", "--username", "boss", "--role", "king"][..], "one of admin, school"),
    ] {
        let out = kjp(&db, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).contains(message), "{args:?}: {}", text(&out));
    }
    let out = kjp(&db, &["user", "add", "--username", "pos.gambir", "--role", "post", "--scope", "31.71.01"]);
    assert!(out.status.success(), "{}", text(&out));

    let out = kjp(&db, &["user", "reset", "--username", "pos.gambir"]);
    assert!(out.status.success() && text(&out).contains("new password"), "{}", text(&out));
    let out = kjp(&db, &["user", "reset", "--username", "nobody"]);
    assert!(!out.status.success() && text(&out).contains("no account named"), "{}", text(&out));

    let out = kjp(&db, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 entries, chain intact"), "{}", text(&out));

    // Someone with the database file rewrites who created the account.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&format!("sqlite:{}", db.display())).await.unwrap();
        sqlx::query("UPDATE audit_log SET subject = 'nobody' WHERE seq = 1").execute(&mut c).await.unwrap();
    });
    let out = kjp(&db, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("entry 1: was edited"), "{}", text(&out));
}

#[test]
fn client_add_list_rotate_revoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kjp.db");
    let args = [
        "client",
        "add",
        "dinsos",
        "--agency",
        "Dinas Sosial",
        "--scope",
        "registry.search, files.import:dtks",
    ];
    let out = kjp(&db, &args);
    assert!(out.status.success(), "{}", text(&out));
    let token =
        text(&out).split("token: ").nth(1).expect("a token").split_whitespace().next().unwrap().to_string();
    assert!(token.starts_with("kjp_") && token.len() == 68, "{token}");

    for (args, message) in [
        (&args[..], "exists"),
        (
            &["client", "add", "bank", "--agency", "Bank DKI", "--scope", "admin"][..],
            "one of registry.search",
        ),
        (
            &["client", "add", "bank", "--agency", "Bank DKI", "--scope", "files.import:nonsense"][..],
            "files.import:<source>",
        ),
        (&["client", "add", "bank", "--agency", "Bank DKI", "--scope", " , "][..], "at least one"),
        (&["client", "add", "bank", "--agency", " ", "--scope", "decree.export"][..], "name the agency"),
        (&["client", "revoke", "nobody"][..], "no client named"),
    ] {
        let out = kjp(&db, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).contains(message), "{args:?}: {}", text(&out));
    }

    let out = kjp(&db, &["client", "list"]);
    let listed = text(&out);
    assert!(listed.contains("dinsos") && listed.contains("live"), "{listed}");
    assert!(listed.contains("registry.search files.import:dtks"), "{listed}");
    assert!(!listed.contains(&token[4..]), "the token is never shown again");

    let out = kjp(&db, &["client", "rotate", "dinsos"]);
    assert!(out.status.success() && text(&out).contains("new token kjp_"), "{}", text(&out));
    assert!(kjp(&db, &["client", "revoke", "dinsos"]).status.success());
    let out = kjp(&db, &["client", "revoke", "dinsos"]);
    assert!(!out.status.success() && text(&out).contains("already revoked"), "{}", text(&out));
    let out = kjp(&db, &["client", "rotate", "dinsos"]);
    assert!(!out.status.success() && text(&out).contains("is revoked"), "{}", text(&out));
    assert!(text(&kjp(&db, &["client", "list"])).contains("revoked"));

    let out = kjp(&db, &["audit", "verify"]);
    assert!(text(&out).contains("3 entries, chain intact"), "add, rotate, revoke: {}", text(&out));
}
