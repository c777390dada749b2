//! Durable timers (`host::timers`): one slot per name, disarmed in place,
//! and the layout before slots moved over once.

use std::cell::RefCell;
use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::timers::Timers;
use pylon_workers::host::{Action, NoConn, NoMsg, Object, Open, OpenError};
use pylon_workers::sql::SqlValue;
use pylon_workers::storage::{SqlConn, SqliteConn};

type Db = Rc<SqliteConn>;

fn rows_written(db: &Db) -> u64 {
    db.meter().unwrap().rows_written
}

#[test]
fn firing_and_setting_again_writes_one_row_and_a_moved_timer_stays_armed() {
    let db: Db = Rc::new(SqliteConn::open_in_memory().unwrap());
    let t = Timers::open(&db).unwrap();
    t.set("tick", 100).unwrap();
    t.set("drain", 100).unwrap();
    let due = t.due(100).unwrap();
    assert_eq!(due, [("drain".into(), 100), ("tick".into(), 100)]);
    // `due` writes nothing; a handler moves "tick" before the disarm.
    let before = rows_written(&db);
    t.set("tick", 150).unwrap();
    t.disarm(&due).unwrap();
    assert_eq!(rows_written(&db) - before, 2, "the move and one disarm");
    assert_eq!(t.all().unwrap(), [("tick".into(), 150)]);
    // Disarmed slots stay, unarmed: cancelling one again writes nothing.
    let before = rows_written(&db);
    assert!(!t.cancel("drain").unwrap());
    assert_eq!(rows_written(&db), before);
    assert!(t.cancel("tick").unwrap());
    assert_eq!(t.next().unwrap(), None);
    assert_eq!(t.due(i64::MAX).unwrap(), []);
}

#[test]
fn the_earlier_layout_is_moved_into_slots_once() {
    let db: Db = Rc::new(SqliteConn::open_in_memory().unwrap());
    db.exec(
        "CREATE TABLE _pylon_timers (name TEXT PRIMARY KEY NOT NULL, at_ms INTEGER NOT NULL) STRICT",
        &[],
    )
    .unwrap();
    db.exec(
        "INSERT INTO _pylon_timers VALUES ('outbox', 500), ('tick', 100)",
        &[],
    )
    .unwrap();
    let t = Timers::open(&db).unwrap();
    assert_eq!(
        t.all().unwrap(),
        [("tick".into(), 100), ("outbox".into(), 500)]
    );
    let old = db
        .exec(
            "SELECT count(*) FROM sqlite_master WHERE name = ?1",
            &[SqlValue::Text("_pylon_timers".into())],
        )
        .unwrap();
    assert_eq!(old[0][0], SqlValue::Integer(0), "the old table is dropped");
    // Opening again finds the slots and runs one statement.
    let before = db.meter().unwrap().statements;
    Timers::open(&db).unwrap();
    assert_eq!(db.meter().unwrap().statements - before, 1);
}

/// Sets its timer again from its own handler, to the time it fired at (a
/// handler that runs "again now"), and counts its fires.
struct Again {
    rounds: u32,
}

thread_local! {
    static FIRED: RefCell<Vec<i64>> = const { RefCell::new(Vec::new()) };
}

impl Object<Db> for Again {
    type Msg = NoMsg;
    type Conn = NoConn;

    async fn open(
        _init: Open<'_, Db>,
        _conns: Vec<(String, NoConn)>,
    ) -> Result<(Self, Vec<Action<NoMsg, NoConn>>), OpenError> {
        let set = Action::SetTimer {
            name: "again".into(),
            at_ms: 10,
        };
        Ok((Again { rounds: 0 }, vec![set]))
    }

    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Vec<Action<NoMsg, NoConn>> {
        assert_eq!(name, "again");
        FIRED.with(|f| f.borrow_mut().push(now_ms));
        self.rounds += 1;
        match self.rounds {
            // The same time it fired at: due again at once.
            1 => vec![Action::SetTimer {
                name: "again".into(),
                at_ms: now_ms,
            }],
            2 => vec![Action::SetTimer {
                name: "again".into(),
                at_ms: now_ms + 100,
            }],
            _ => Vec::new(),
        }
    }
}

#[test]
fn a_timer_its_handler_sets_again_fires_again_even_at_the_same_time() {
    FIRED.with(|f| f.borrow_mut().clear());
    let db: Db = Rc::new(SqliteConn::open_in_memory().unwrap());
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    let app = APP.get_or_init(|| App::new(r#"{"entities":[]}"#));
    let mut h: LocalHost<Db, Again> = LocalHost::open(db.clone(), "again", app).unwrap();
    h.advance(1_000).unwrap();
    assert_eq!(FIRED.with(|f| f.borrow().clone()), [10, 10, 110]);
    // Fired for good: disarmed, no alarm left.
    assert_eq!(h.alarm(), None);
    assert_eq!(Timers::on(&db).all().unwrap(), []);
}
