//! The manifest's shard rules on the cold path and in the directory,
//! checked in SQL on real SQLite: who sees which shard's rows, named shards
//! refused like the shard refuses them, rule order, claim values that look
//! like wildcards, aggregates, filters, paging; and the SQL condition
//! against `AuthConfig::admit` on random names, rules and callers.

mod gen_support;
mod store_support;

use std::collections::BTreeSet;

use gen_support::Rng;
use pylon_workers::auth::{AuthConfig, Pattern, ShardRule};
use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::sql::SqlValue;
use pylon_workers::storage::StorageError;
use pylon_workers::store::cold::{cold_query, ColdResult};
use pylon_workers::store::shard_access::shard_condition;
use pylon_workers::store::{list_shards, RusqliteExecutor, Statement, StoreError};
use pylon_workers::{D1DataStore, D1Executor, DataStore};
use serde_json::{json, Value};
use store_support::{d1, manifest, ready, row};

const CARD_SHARDS: [&str; 7] = [
    "team:acme",
    "team:evil",
    "team:acme-2",
    "user:u1",
    "user:u2",
    "lobby",
    "room-1",
];

fn card(id: &str, title: &str, n: i64) -> pylon_workers::value::Row {
    row(
        json!({"id": id, "title": title, "done": n % 2 == 0, "position": n as f64,
               "createdAt": "2026-11-23T00:00:00Z"}),
    )
}

fn message(id: &str, author: &str, n: i64) -> pylon_workers::value::Row {
    row(
        json!({"id": id, "channelId": "c1", "authorId": author, "body": format!("secret {n}"),
               "sentAt": "2026-11-23T00:00:00Z", "seq": n}),
    )
}

/// Five cards per shard, titled after the shard ("team:acme 3"); messages
/// in both team shards.
fn setup(m: &Manifest) -> RusqliteExecutor {
    let db = d1(m);
    let store = D1DataStore::new(&db, m.clone());
    for s in CARD_SHARDS {
        let shard = store.shard(s);
        for i in 0..5 {
            ready(shard.insert("Card", card(&format!("c{i}"), &format!("{s} {i}"), i))).unwrap();
        }
    }
    for (s, author) in [("team:acme", "ann"), ("team:evil", "eve")] {
        let shard = store.shard(s);
        for i in 0..4 {
            ready(shard.insert("Message", message(&format!("m{i}"), author, i))).unwrap();
        }
    }
    db
}

fn query(db: &RusqliteExecutor, m: &Manifest, body: Value, a: &AuthContext) -> ColdResult {
    ready(cold_query(db, m, &body, a)).unwrap_or_else(|e| panic!("{body}: {e}"))
}

/// Every row over all pages of `body`, following `next`; checks that each
/// page before the last is full (the rules are in the SQL, not applied to
/// a fetched page).
fn all_rows(db: &RusqliteExecutor, m: &Manifest, mut body: Value, a: &AuthContext) -> Vec<Value> {
    let limit = body["limit"].as_u64().map(|n| n as usize);
    let mut out = Vec::new();
    loop {
        let ColdResult::Rows { rows, next } = query(db, m, body.clone(), a) else {
            panic!("not rows")
        };
        if let (Some(n), Some(_)) = (limit, &next) {
            assert_eq!(rows.len(), n, "a page before the last is full");
        }
        out.extend(rows);
        match next {
            Some(n) => body["after"] = json!(n),
            None => return out,
        }
    }
}

fn shards_of(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["_shard"].as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn refusal(db: &RusqliteExecutor, m: &Manifest, body: Value, a: &AuthContext) -> StoreError {
    ready(cold_query(db, m, &body, a)).unwrap_err()
}

fn tenant(user: &str, t: &str) -> AuthContext {
    AuthContext::user(user).with_tenant(t)
}

#[test]
fn callers_see_the_shards_they_may_enter() {
    let m = manifest();
    let db = setup(&m);
    let cards = json!({"entity": "Card", "limit": 4});
    let cases: [(&str, AuthContext, &[&str]); 6] = [
        ("anonymous", AuthContext::anonymous(), &["lobby", "room-1"]),
        (
            "evil",
            tenant("eve", "evil"),
            &["team:evil", "lobby", "room-1"],
        ),
        (
            "acme",
            tenant("ann", "acme"),
            &["team:acme", "lobby", "room-1"],
        ),
        (
            "u1",
            AuthContext::user("u1"),
            &["user:u1", "lobby", "room-1"],
        ),
        ("admin", AuthContext::admin(), &CARD_SHARDS),
        (
            "tenant acme-2",
            tenant("x", "acme-2"),
            &["team:acme-2", "lobby", "room-1"],
        ),
    ];
    for (who, caller, want) in cases {
        let rows = all_rows(&db, &m, cards.clone(), &caller);
        assert_eq!(shards_of(&rows), set(want), "{who}");
        assert_eq!(rows.len(), 5 * want.len(), "{who}");
        // The same through the directory.
        let dir = ready(list_shards(&db, &m, &caller, None, 0)).unwrap();
        let listed: BTreeSet<String> = dir.shards.iter().map(|s| s.shard.clone()).collect();
        assert_eq!(listed, set(want), "{who}: directory");
    }
}

/// Counts the rows the database hands back.
struct Counting<'a>(&'a RusqliteExecutor, std::cell::Cell<usize>);

impl D1Executor for Counting<'_> {
    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, StorageError> {
        self.0.execute(sql, params).await
    }
    async fn query(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        let rows = self.0.query(sql, params).await?;
        self.1.set(self.1.get() + rows.len());
        Ok(rows)
    }
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StorageError> {
        self.0.batch(statements).await
    }
}

#[test]
fn the_database_returns_only_admitted_rows() {
    let m = manifest();
    let db = setup(&m);
    for (caller, shards) in [
        (AuthContext::anonymous(), 2),
        (tenant("eve", "evil"), 3),
        (AuthContext::admin(), 7),
    ] {
        let counting = Counting(&db, Default::default());
        let body = json!({"entity": "Card", "limit": 1000});
        let ColdResult::Rows { rows, .. } =
            ready(cold_query(&counting, &m, &body, &caller)).unwrap()
        else {
            panic!()
        };
        assert_eq!(rows.len(), 5 * shards);
        assert_eq!(counting.1.get(), 5 * shards, "{caller:?}: rows fetched");
        let counting = Counting(&db, Default::default());
        let dir = ready(list_shards(&counting, &m, &caller, None, 0)).unwrap();
        assert_eq!((dir.shards.len(), counting.1.get()), (shards, shards));
    }
}

#[test]
fn a_named_shard_is_refused_like_the_shard_refuses_it() {
    let m = manifest();
    let db = setup(&m);
    let rules = m.auth();
    let cases = [
        (AuthContext::anonymous(), "team:acme", 401, "MISSING_TOKEN"),
        (AuthContext::anonymous(), "user:u1", 401, "MISSING_TOKEN"),
        (tenant("eve", "evil"), "team:acme", 403, "SHARD_DENIED"),
        (AuthContext::user("u2"), "user:u1", 403, "SHARD_DENIED"),
    ];
    for (caller, shard, status, reason) in cases {
        for body in [
            json!({"entity": "Message", "shard": shard}),
            json!({"entity": "Card", "shard": shard, "where": {"title": format!("{shard} 1")}}),
            json!({"entity": "Card", "shard": shard, "aggregate": {"op": "count"}}),
        ] {
            let e = refusal(&db, &m, body.clone(), &caller);
            let api = e.to_api_error();
            assert_eq!((api.status, api.reason), (status, Some(reason)), "{body}");
            // Exactly the shard's own answer (glue::auth::refusal of this error).
            let own = rules
                .admit(shard, (caller.user_id.is_some()).then_some(&caller))
                .unwrap_err();
            assert_eq!(e, StoreError::Access(own.clone()));
            assert_eq!(api, own.to_api_error());
        }
    }
    // Admitted: the tenant's own shard, and the admin anywhere.
    let own = json!({"entity": "Message", "shard": "team:acme"});
    assert_eq!(
        all_rows(&db, &m, own.clone(), &tenant("ann", "acme")).len(),
        4
    );
    assert_eq!(all_rows(&db, &m, own, &AuthContext::admin()).len(), 4);
}

#[test]
fn filters_and_aggregates_see_only_admitted_shards() {
    let m = manifest();
    let db = setup(&m);
    let anon = AuthContext::anonymous();
    let evil = tenant("eve", "evil");
    // A where on a value only acme's shard holds.
    let by_title = json!({"entity": "Card", "where": {"title": "team:acme 2"}});
    assert!(all_rows(&db, &m, by_title.clone(), &anon).is_empty());
    assert!(all_rows(&db, &m, by_title.clone(), &evil).is_empty());
    assert_eq!(
        all_rows(&db, &m, by_title.clone(), &tenant("ann", "acme")).len(),
        1
    );
    let like = json!({"entity": "Card", "where": {"title": {"$like": "team:%"}}});
    assert_eq!(
        shards_of(&all_rows(&db, &m, like, &evil)),
        set(&["team:evil"])
    );
    // Messages: read policy (signed-in callers) AND shard rules.
    let messages = json!({"entity": "Message", "limit": 3});
    assert!(all_rows(&db, &m, messages.clone(), &anon).is_empty());
    let got = all_rows(&db, &m, messages.clone(), &evil);
    assert_eq!(shards_of(&got), set(&["team:evil"]));
    assert!(got.iter().all(|r| r["authorId"] == "eve"));
    assert_eq!(all_rows(&db, &m, messages, &AuthContext::admin()).len(), 8);

    let agg = |body: Value, a: &AuthContext| match query(&db, &m, body, a) {
        ColdResult::Aggregate { aggregate } => serde_json::to_value(aggregate).unwrap(),
        other => panic!("{other:?}"),
    };
    let count = json!({"entity": "Card", "aggregate": {"op": "count"}});
    assert_eq!(agg(count.clone(), &anon), json!([{"value": 10}]));
    assert_eq!(agg(count.clone(), &evil), json!([{"value": 15}]));
    assert_eq!(agg(count, &AuthContext::admin()), json!([{"value": 35}]));
    let by_title = json!({"entity": "Card", "aggregate": {"op": "count", "groupBy": "title"}});
    let groups = agg(by_title, &anon);
    let titles: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 10);
    assert!(titles
        .iter()
        .all(|t| t.starts_with("lobby") || t.starts_with("room-1")));
    let max = json!({"entity": "Message", "aggregate": {"op": "max", "field": "seq", "groupBy": "authorId"}});
    assert_eq!(agg(max, &evil), json!([{"group": "eve", "value": 3}]));
    let sum = json!({"entity": "Card", "where": {"done": true},
                     "aggregate": {"op": "sum", "field": "position", "groupBy": "done"}});
    // done: positions 0, 2, 4 in each of lobby and room-1.
    assert_eq!(agg(sum, &anon), json!([{"group": true, "value": 12.0}]));
}

#[test]
fn paging_with_after_stays_complete_under_the_rules() {
    let m = manifest();
    let db = setup(&m);
    let acme = tenant("ann", "acme");
    for order in [json!(["position"]), json!(["-title"]), json!([])] {
        for limit in [1, 2, 3, 7] {
            let body = json!({"entity": "Card", "order": order, "limit": limit});
            let rows = all_rows(&db, &m, body, &acme);
            let keys: BTreeSet<(String, String)> = rows
                .iter()
                .map(|r| {
                    (
                        r["_shard"].as_str().unwrap().into(),
                        r["id"].as_str().unwrap().into(),
                    )
                })
                .collect();
            assert_eq!(keys.len(), rows.len(), "no row twice ({order}, {limit})");
            assert_eq!(rows.len(), 15, "{order}, {limit}");
            assert_eq!(shards_of(&rows), set(&["team:acme", "lobby", "room-1"]));
        }
    }
    // The directory pages too, complete under the filter.
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let page = ready(list_shards(&db, &m, &acme, after.as_deref(), 1)).unwrap();
        seen.extend(page.shards.iter().map(|s| s.shard.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ["lobby", "room-1", "team:acme"]);
}

fn rule(p: &str) -> ShardRule {
    ShardRule::new(Pattern::parse(p).unwrap())
}

fn manifest_with(rules: Value) -> Manifest {
    let mut v: Value = serde_json::from_str(include_str!("../examples/board/schema.json")).unwrap();
    v["auth"]["shards"] = rules;
    Manifest::from_value(v).unwrap()
}

#[test]
fn an_earlier_rule_governs_what_it_fits() {
    // team:acme-2 fits the first rule, which needs the role `boss`: the
    // second would admit tenant acme-2, but does not govern it.
    let m = manifest_with(json!([
        {"pattern": "team:acme-*", "roles": ["boss"]},
        {"pattern": "team:{tenantId}"},
        {"pattern": "*", "allowAnonymous": true}
    ]));
    let db = setup(&m);
    let cards = json!({"entity": "Card", "limit": 50});
    let worker = tenant("x", "acme-2");
    assert_eq!(
        shards_of(&all_rows(&db, &m, cards.clone(), &worker)),
        set(&["lobby", "room-1", "user:u1", "user:u2"])
    );
    let e = refusal(
        &db,
        &m,
        json!({"entity": "Card", "shard": "team:acme-2"}),
        &worker,
    );
    assert_eq!(e.to_api_error().reason, Some("SHARD_DENIED"));
    let boss = tenant("y", "nobody").with_roles(["boss"]);
    assert_eq!(
        shards_of(&all_rows(&db, &m, cards.clone(), &boss)),
        set(&["team:acme-2", "lobby", "room-1", "user:u1", "user:u2"])
    );
    // Anonymous callers get what the last rule governs only.
    assert_eq!(
        shards_of(&all_rows(&db, &m, cards, &AuthContext::anonymous())),
        set(&["lobby", "room-1", "user:u1", "user:u2"])
    );
}

#[test]
fn claim_values_that_look_like_wildcards_admit_nothing() {
    let m = manifest();
    let db = setup(&m);
    let cards = json!({"entity": "Card", "limit": 50});
    for weird in [
        "*",
        "?*",
        "acme*",
        "ac?e",
        "[a]cme",
        "[a-z]*",
        "%",
        "acme' OR '1'='1",
        "a]",
    ] {
        for caller in [tenant("x", weird), AuthContext::user(weird)] {
            let rows = all_rows(&db, &m, cards.clone(), &caller);
            assert_eq!(shards_of(&rows), set(&["lobby", "room-1"]), "{weird}");
            let count = json!({"entity": "Card", "aggregate": {"op": "count"}});
            let ColdResult::Aggregate { aggregate } = query(&db, &m, count, &caller) else {
                panic!()
            };
            assert_eq!(
                serde_json::to_value(&aggregate).unwrap(),
                json!([{"value": 10}])
            );
            let dir = ready(list_shards(&db, &m, &caller, None, 0)).unwrap();
            assert!(dir.shards.iter().all(|s| !s.shard.contains(':')), "{weird}");
        }
    }
}

#[test]
fn a_literal_prefix_rule_is_an_index_range() {
    // A tenant with many shards: team:acme and team:acme:<anything>.
    let m =
        manifest_with(json!([{"pattern": "team:{tenantId}:*"}, {"pattern": "team:{tenantId}"}]));
    let db = setup(&m);
    let access = m.auth().shard_access(Some(&tenant("ann", "acme")));
    let (cond, params) = shard_condition(&access, "_shard").unwrap();
    assert!(params.is_empty());
    let plan = ready(db.query(
        &format!(
            "EXPLAIN QUERY PLAN SELECT \"id\" FROM \"Card\" WHERE \"_deleted\" = 0 AND {cond}"
        ),
        &[],
    ))
    .unwrap();
    let text = format!("{plan:?}");
    assert!(
        text.contains("SEARCH") && text.contains("_shard>? AND _shard<?"),
        "{text}"
    );
    // A `*` rule with exclusions scans.
    let access = manifest().auth().shard_access(None);
    let (cond, _) = shard_condition(&access, "_shard").unwrap();
    let plan = ready(db.query(
        &format!("EXPLAIN QUERY PLAN SELECT \"id\" FROM \"Card\" WHERE {cond}"),
        &[],
    ))
    .unwrap();
    assert!(format!("{plan:?}").contains("SCAN"), "{plan:?}");
}

#[test]
fn a_d1_without_schema_answers_not_migrated() {
    let m = manifest();
    let db = RusqliteExecutor::open_in_memory().unwrap();
    let e = refusal(
        &db,
        &m,
        json!({"entity": "Card"}),
        &AuthContext::anonymous(),
    );
    let e2 = ready(list_shards(&db, &m, &AuthContext::admin(), None, 0)).unwrap_err();
    for e in [e, e2] {
        let api = e.to_api_error();
        assert_eq!((api.status, api.code), (503, "D1_NOT_MIGRATED"));
        assert!(
            api.message
                .contains("wrangler d1 migrations apply DB --local"),
            "{api:?}"
        );
        assert!(api.message.contains("--remote"), "{api:?}");
        assert!(!api.message.contains("no such table"), "{api:?}");
    }
}

// ---- The SQL condition against `AuthConfig::admit`, on random inputs.

const NAME_PARTS: [&str; 12] = [
    "team", "user", "ops", "acme", "evil", "u1", "a", "-", ":", ".", "_", "x9",
];
const PATTERNS: [&str; 16] = [
    "*",
    "team:{tenantId}",
    "team:{tenantId}:*",
    "user:{userId}",
    "user:{userId}-*",
    "ops:*",
    "team:acme*",
    "*:a",
    "{tenantId}",
    "{userId}:{tenantId}",
    "a*-*a",
    "team:*:{userId}",
    "lobby",
    "x9*",
    "*{tenantId}*",
    "team:a",
];
const CLAIMS: [&str; 10] = [
    "acme", "evil", "u1", "a", "*", "a?", "[a]", "team", "a:a", "",
];

fn random_name(rng: &mut Rng) -> String {
    let n = 1 + rng.below(5);
    (0..n).map(|_| *rng.pick(&NAME_PARTS)).collect()
}

fn random_rules(rng: &mut Rng) -> AuthConfig {
    let n = rng.below(6);
    let shards = (0..n)
        .map(|_| {
            let pattern = *rng.pick(&PATTERNS);
            let mut r = rule(pattern).allow_anonymous(rng.chance(40));
            if rng.chance(20) {
                r = r.roles([*rng.pick(&["boss", "ops"])]);
            }
            r
        })
        .collect();
    AuthConfig {
        anonymous: rng.chance(50),
        shards,
        ..AuthConfig::default()
    }
}

fn random_caller(rng: &mut Rng) -> Option<AuthContext> {
    let claim = |rng: &mut Rng| rng.pick(&CLAIMS).to_string();
    match rng.below(6) {
        0 => None,
        1 => Some(AuthContext {
            user_id: Some(claim(rng)),
            is_admin: true,
            ..AuthContext::default()
        }),
        _ => {
            let mut c = AuthContext::user(claim(rng));
            if rng.chance(70) {
                c = c.with_tenant(claim(rng));
            }
            if rng.chance(30) {
                c = c.with_roles(["boss"]);
            }
            Some(c)
        }
    }
}

#[test]
fn the_sql_condition_agrees_with_admit() {
    let db = RusqliteExecutor::open_in_memory().unwrap();
    ready(db.execute("CREATE TABLE names (shard TEXT PRIMARY KEY)", &[])).unwrap();
    let mut rng = Rng::new(0x5eed_c01d);
    let mut names = BTreeSet::new();
    while names.len() < 400 {
        names.insert(random_name(&mut rng));
    }
    for extra in [
        "team:acme",
        "team:acme:x",
        "user:u1",
        "user:u1-a",
        "a:a",
        "team:a",
        "lobby",
    ] {
        names.insert(extra.to_owned());
    }
    for n in &names {
        ready(db.execute("INSERT INTO names VALUES (?)", &[SqlValue::Text(n.clone())])).unwrap();
    }
    let (mut checked, mut admitted) = (0, 0);
    for _ in 0..600 {
        let config = random_rules(&mut rng);
        let caller = random_caller(&mut rng);
        let access = config.shard_access(caller.as_ref());
        let sql = match shard_condition(&access, "shard") {
            None => "SELECT shard FROM names ORDER BY shard".to_owned(),
            Some((cond, params)) => {
                assert!(params.is_empty(), "{cond}");
                format!("SELECT shard FROM names WHERE {cond} ORDER BY shard")
            }
        };
        let got: BTreeSet<String> = ready(db.query(&sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .map(|r| match &r[0] {
                SqlValue::Text(t) => t.clone(),
                v => panic!("{v:?}"),
            })
            .collect();
        let want: BTreeSet<String> = names
            .iter()
            .filter(|n| config.admit(n, caller.as_ref()).is_ok())
            .cloned()
            .collect();
        assert_eq!(
            got, want,
            "rules {:?}, caller {caller:?}, SQL {sql}",
            config.shards
        );
        for n in &names {
            assert_eq!(access.admits(n), want.contains(n), "{n}: {access:?}");
        }
        checked += names.len();
        admitted += want.len();
    }
    // The inputs exercise both outcomes.
    assert!(
        admitted > checked / 20 && admitted < checked * 19 / 20,
        "{admitted}/{checked}"
    );
}
