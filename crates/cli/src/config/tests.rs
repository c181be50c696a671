//! Tests of `config.rs`: files, flags over them, validation, the effective TOML.

use super::*;

/// Loads `toml` from a file of its own: a directory per call (process id and a counter), so
/// that tests running at once never share one (and never remove another's).
fn load_toml(toml: &str, args: ServeArgs) -> Result<Settings> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringd-config-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ringd.toml");
    std::fs::write(&path, toml).unwrap();
    let args = ServeArgs {
        config: Some(path),
        ..args
    };
    let r = Settings::load(&args);
    std::fs::remove_dir_all(&dir).ok();
    r
}

#[test]
fn file_values_apply_and_flags_win() {
    let s = load_toml(
        "listen = [\"127.0.0.1:9000\"]\nworkers = 3\n[limits]\nmax_body = 10\n[timeouts]\nkeepalive = 5\n",
        ServeArgs {
            max_body: Some(20),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.server.listen, vec!["127.0.0.1:9000".parse().unwrap()]);
    assert_eq!(s.server.workers, Workers::Count(3));
    assert_eq!(s.server.limits.max_body, 20);
    assert_eq!(s.server.timeouts.keepalive, Duration::from_secs(5));
}

#[test]
fn sendfile_is_on_unless_the_file_or_the_flag_turns_it_off() {
    assert!(load_toml("", ServeArgs::default()).unwrap().server.sendfile);
    let off = load_toml("sendfile = false\n", ServeArgs::default()).unwrap();
    assert!(!off.server.sendfile);
    assert!(off.to_toml().contains("sendfile = false"));
    let flag = ServeArgs {
        sendfile: Some(true),
        ..Default::default()
    };
    assert!(load_toml("sendfile = false\n", flag).unwrap().server.sendfile);
    let on = load_toml("", ServeArgs::default()).unwrap();
    assert_eq!(on.changes(&off), vec!["sendfile"]);
}

#[test]
fn defer_accept_is_off_unless_the_file_or_the_flag_turns_it_on() {
    assert!(!load_toml("", ServeArgs::default()).unwrap().server.defer_accept);
    let on = load_toml("defer_accept = true\n", ServeArgs::default()).unwrap();
    assert!(on.server.defer_accept);
    assert!(on.to_toml().contains("defer_accept = true"));
    let flag = ServeArgs {
        defer_accept: Some(false),
        ..Default::default()
    };
    assert!(!load_toml("defer_accept = true\n", flag).unwrap().server.defer_accept);
    let off = load_toml("", ServeArgs::default()).unwrap();
    assert_eq!(off.changes(&on), vec!["defer_accept"]);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let e = load_toml("backlog = 10\nbogus_key = 1\n", ServeArgs::default()).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("bogus_key") && msg.contains("line 2"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[test]
fn invalid_values_from_the_file_name_their_line() {
    let e = load_toml(
        "backlog = 5\n\n[buffers]\nsize = 8192\ncount = 0\n",
        ServeArgs::default(),
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("line 5") && msg.contains("buffers.count"), "{msg}");
    let e = load_toml("max_connections = 0\n", ServeArgs::default()).unwrap_err();
    assert!(
        format!("{e:#}").contains("line 1: invalid configuration: max_connections"),
        "{e:#}"
    );
}

#[test]
fn bad_values_are_errors() {
    assert!(load_toml("workers = \"lots\"\n", ServeArgs::default()).is_err());
    assert!(load_toml("[buffers]\ncount = 0\n", ServeArgs::default()).is_err());
    assert!(load_toml("backlog = \"x\"\n", ServeArgs::default()).is_err());
}

#[test]
fn example_config_is_valid_and_says_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ringd.toml");
    let s = Settings::load(&ServeArgs {
        config: Some(path),
        ..Default::default()
    })
    .unwrap();
    // Every value in the example is the built-in default, except the site root.
    let defaults = ServerConfig::default();
    assert_eq!(s.server.listen, defaults.listen);
    assert_eq!(s.server.limits, defaults.limits);
    assert_eq!(s.server.buffers, defaults.buffers);
    assert_eq!(s.server.timeouts, defaults.timeouts);
    assert_eq!(s.server.backlog, defaults.backlog);
    assert_eq!(s.server.max_requests_per_conn, defaults.max_requests_per_conn);
    assert_eq!(s.server.max_connections, defaults.max_connections);
    assert_eq!(s.server.shed, defaults.shed);
    assert_eq!(s.root, Some(PathBuf::from("/var/lib/ringd/www")));
}

#[test]
fn effective_config_round_trips_through_its_toml() {
    let s = load_toml(
        "workers = 3\nshed = \"close\"\n[timeouts]\nhandler = 7\n",
        ServeArgs {
            max_body: Some(99),
            ..Default::default()
        },
    )
    .unwrap();
    let text = s.to_toml();
    let again = load_toml(&text, ServeArgs::default()).unwrap();
    assert_eq!(again.to_toml(), text);
    assert_eq!(again.server.limits.max_body, 99);
    assert_eq!(again.server.timeouts.handler, Some(Duration::from_secs(7)));
    assert_eq!(again.server.shed, Shed::Close);
}

#[test]
fn tls_settings_load_and_round_trip() {
    let s = load_toml(
        "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\nredirect = [\"80\"]\n\n[[tls.sni]]\nnames = [\"a.example\", \"*.b.example\"]\ncert = \"/a.pem\"\nkey = \"/a.key\"\n",
        ServeArgs::default(),
    )
    .unwrap();
    let tls = s.server.tls.as_ref().unwrap();
    assert_eq!(tls.default.cert, PathBuf::from("/c.pem"));
    assert_eq!(tls.sni[0].names, ["a.example", "*.b.example"]);
    assert_eq!(s.server.redirect_listen, vec!["0.0.0.0:80".parse().unwrap()]);
    let text = s.to_toml();
    let again = load_toml(&text, ServeArgs::default()).unwrap();
    assert_eq!(again.server.tls, s.server.tls);
    assert_eq!(again.to_toml(), text);
    // Flags win over the file.
    let s = load_toml(
        "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n",
        ServeArgs {
            tls_cert: Some("/flag.pem".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.server.tls.unwrap().default.cert, PathBuf::from("/flag.pem"));
    for bad in [
        "[tls]\ncert = \"/c.pem\"\n",
        "[[tls.sni]]\nnames = [\"a.example\"]\ncert = \"/a.pem\"\nkey = \"/a.key\"\n",
        "[tls]\ncert = \"/c\"\nkey = \"/k\"\n[[tls.sni]]\nnames = [\"Bad Name\"]\ncert = \"/a\"\nkey = \"/a\"\n",
        "[tls]\ncert = \"/c\"\nkey = \"/k\"\nbogus = 1\n",
    ] {
        assert!(load_toml(bad, ServeArgs::default()).is_err(), "{bad}");
    }
}

#[test]
fn defaults_without_file() {
    let s = Settings::load(&ServeArgs::default()).unwrap();
    assert_eq!(s.server.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
    assert!(s.root.is_none());
    assert_eq!(s.log, "info");
}

/// README.md and deploy/ringd.toml name exactly the settings the server keeps until a restart
/// (`ring_server::RESTART_ONLY`, declared once in ring-server's config.rs).
#[test]
fn readme_and_the_example_name_every_restart_only_setting() {
    for (file, text) in [
        ("README.md", include_str!("../../../../README.md")),
        ("deploy/ringd.toml", include_str!("../../../../deploy/ringd.toml")),
    ] {
        let at = text
            .find("restart-only")
            .unwrap_or_else(|| panic!("{file} says nothing of the restart-only settings"));
        let list = &text[at..];
        // The list ends at the sentence's end.
        let end = [list.find(';'), list.find(".\n")].into_iter().flatten().min();
        let list = &list[..end.unwrap_or(list.len())];
        let named: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
        let mut want = ring_server::RESTART_ONLY.to_vec();
        let mut got = named.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{file}'s list of restart-only settings: {named:?}");
    }
}
