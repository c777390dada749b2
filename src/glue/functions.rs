//! The TypeScript functions bundled into the Worker, as the engine's
//! [`ScriptFunctions`]: the bundle (scripts/build-functions.sh) installs
//! `globalThis.__pylon_functions`, and each call hands it a bridge whose
//! methods come back here (docs/functions.md, "The bridge").
//!
//! `bridge.db` is a Rust closure over the call's `ctx.db`, which lives on
//! the calling future's stack: the closure reaches it through a slot that
//! holds a pointer only while the call runs, cleared when it ends (also
//! if the future is dropped). A late `ctx.db` call from a handler that
//! kept running finds the slot empty and gets `CALL_ENDED` (and the
//! runtime itself never passes one on once its call has ended, which is
//! what lets queries and mutations share one bridge object: they run one
//! at a time, each within its event).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::functions::{
    dispatch_db, envelope, parse_envelope, ActionHost, Db, FnError, FnKind, FunctionInfo,
    ScriptFunctions,
};
use crate::host::Pending;
use crate::policy::AuthContext;
use crate::protocol::ErrorCode;
use crate::value::Value;

/// The promise of an action's bridge call (`call`, `publish`, `room`):
/// one boxed future type, so the promise machinery is built once for all.
fn promise(f: Pending<'static, Result<JsValue, JsValue>>) -> Promise {
    future_to_promise(f)
}

/// The bundle's registry, read from the global at each use.
pub struct BundledFunctions;

const GLOBAL: &str = "__pylon_functions";

fn registry() -> Option<Object> {
    Reflect::get(&js_sys::global(), &JsValue::from_str(GLOBAL))
        .ok()
        .filter(|r| r.is_object())
        .map(JsValue::unchecked_into)
}

fn method(obj: &Object, name: &str) -> Result<Function, FnError> {
    Reflect::get(obj, &JsValue::from_str(name))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| FnError::failed(format!("the functions bundle has no {name}()")))
}

fn js_err(e: JsValue) -> FnError {
    FnError::failed(format!(
        "the function runtime threw: {}",
        e.as_string()
            .or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string()))
            .unwrap_or_default()
    ))
}

/// The caller as the runtime's `ctx.auth`.
fn auth_json(auth: &AuthContext) -> String {
    serde_json::json!({
        "userId": auth.user_id,
        "tenantId": auth.tenant_id,
        "roles": auth.roles,
        "isAdmin": auth.is_admin,
    })
    .to_string()
}

type DbSlot = Rc<RefCell<Option<*mut (dyn Db + 'static)>>>;

/// Empties the slot when the call ends, however it ends.
struct Clear(DbSlot);

impl Drop for Clear {
    fn drop(&mut self) {
        self.0.borrow_mut().take();
    }
}

/// A bridge object and the slot its `db` reaches the call's `ctx.db`
/// through.
#[derive(Clone)]
struct Bridge {
    obj: Object,
    slot: DbSlot,
    /// Kept alive as long as the object (clones share it).
    _db: Rc<Closure<dyn FnMut(String, String) -> String>>,
}

impl Bridge {
    fn new() -> Bridge {
        let obj = Object::new();
        let slot: DbSlot = Rc::new(RefCell::new(None));
        let db_slot = slot.clone();
        let db_fn = Closure::<dyn FnMut(String, String) -> String>::new(
            move |op: String, payload: String| match *db_slot.borrow() {
                // SAFETY: the slot holds a pointer only while its call runs
                // (see `run`); one call at a time (single thread, and
                // `dispatch_db` does not call back into JS).
                Some(ptr) => dispatch_db(unsafe { &mut *ptr }, &op, &payload),
                None => envelope(Err(FnError::new(
                    ErrorCode::FunctionFailed,
                    "CALL_ENDED: this call has already been answered",
                ))),
            },
        );
        let _ = Reflect::set(&obj, &JsValue::from_str("db"), db_fn.as_ref());
        Bridge {
            obj,
            slot,
            _db: Rc::new(db_fn),
        }
    }
}

thread_local! {
    static SHARED: Bridge = Bridge::new();
}

impl ScriptFunctions for BundledFunctions {
    fn list(&self) -> Vec<FunctionInfo> {
        let Some(reg) = registry() else {
            return Vec::new();
        };
        let listed = method(&reg, "list")
            .and_then(|f| f.call0(&reg).map_err(js_err))
            .and_then(|v| js_sys::JSON::stringify(&v).map_err(js_err))
            .map(|s| s.as_string().unwrap_or_default());
        match listed.map(|t| serde_json::from_str::<Vec<FunctionInfo>>(&t)) {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                worker::console_error!("functions: list() answered badly: {e}");
                Vec::new()
            }
            Err(e) => {
                worker::console_error!("functions: {e}");
                Vec::new()
            }
        }
    }

    fn run<'a>(
        &'a self,
        name: &'a str,
        kind: FnKind,
        auth: &'a AuthContext,
        db: Option<&'a mut dyn Db>,
        host: Option<Rc<dyn ActionHost>>,
        args: &'a Value,
    ) -> Pending<'a, Result<Value, FnError>> {
        Box::pin(async move {
            let reg = registry().ok_or_else(|| FnError::unknown(name))?;
            let run = method(&reg, "run")?;
            // A query or mutation runs within its event, one at a time in
            // the isolate: they share one bridge (built once). An action,
            // or a call while the shared bridge is taken, gets its own.
            let shared = if host.is_none() {
                SHARED.with(|b| b.slot.borrow().is_none().then(|| b.clone()))
            } else {
                None
            };
            let bridge = match &shared {
                Some(b) => b.clone(),
                None => Bridge::new(),
            };
            let set = |k: &str, v: &JsValue| Reflect::set(&bridge.obj, &JsValue::from_str(k), v);
            set("kind", &JsValue::from_str(kind.as_str())).map_err(js_err)?;
            set("auth", &JsValue::from_str(&auth_json(auth))).map_err(js_err)?;
            let _clear = Clear(bridge.slot.clone());
            if let Some(db) = db {
                let ptr: *mut (dyn Db + 'a) = db;
                // SAFETY: the pointer is only dereferenced through the
                // slot, which `_clear` empties before `'a` can end (this
                // future holds the borrow until it completes or is dropped).
                let ptr: *mut (dyn Db + 'static) = unsafe { std::mem::transmute(ptr) };
                *bridge.slot.borrow_mut() = Some(ptr);
            }
            // `bridge.publish(channel, dataJson)`: an action's `ctx.channels.publish`.
            let publish_fn = host.clone().map(|host| {
                Closure::<dyn FnMut(String, String) -> Promise>::new(
                    move |channel: String, data: String| {
                        let host = host.clone();
                        promise(Box::pin(async move {
                            let result = match serde_json::from_str::<Value>(&data) {
                                Ok(data) => host.publish(&channel, data).await,
                                Err(e) => Err(FnError::bad_args("data", e)),
                            };
                            Ok(JsValue::from_str(&envelope(result)))
                        }))
                    },
                )
            });
            if let Some(f) = &publish_fn {
                set("publish", f.as_ref()).map_err(js_err)?;
            }
            // `bridge.room(op, room, bodyJson)`: an action's `ctx.rooms`.
            let room_fn = host.clone().map(|host| {
                Closure::<dyn FnMut(String, String, String) -> Promise>::new(
                    move |op: String, room: String, body: String| {
                        let host = host.clone();
                        promise(Box::pin(async move {
                            let result = match (
                                crate::shard::rooms::RoomOp::parse(&op),
                                serde_json::from_str::<serde_json::Value>(&body),
                            ) {
                                (Some(op), Ok(body)) => host.room(op, &room, body).await,
                                (None, _) => Err(FnError::bad_args(
                                    "op",
                                    format!("{op:?} is not a rooms operation"),
                                )),
                                (_, Err(e)) => Err(FnError::bad_args("body", e)),
                            };
                            Ok(JsValue::from_str(&envelope(result)))
                        }))
                    },
                )
            });
            if let Some(f) = &room_fn {
                set("room", f.as_ref()).map_err(js_err)?;
            }
            let call_fn = host.map(|host| {
                Closure::<dyn FnMut(String, String, String) -> Promise>::new(
                    move |kind: String, name: String, args: String| {
                        let host = host.clone();
                        promise(Box::pin(async move {
                            let kind = match kind.as_str() {
                                "query" => FnKind::Query,
                                _ => FnKind::Mutation,
                            };
                            let result = match serde_json::from_str::<Value>(&args) {
                                Ok(args) => host.run(kind, &name, args).await,
                                Err(e) => Err(FnError::bad_args("args", e)),
                            };
                            Ok(JsValue::from_str(&envelope(result)))
                        }))
                    },
                )
            });
            if let Some(f) = &call_fn {
                set("call", f.as_ref()).map_err(js_err)?;
            }
            let args_json = serde_json::to_string(args).expect("values serialize");
            let promise = run
                .call3(
                    &reg,
                    &JsValue::from_str(name),
                    &bridge.obj,
                    &JsValue::from_str(&args_json),
                )
                .map_err(js_err)?;
            let answered = JsFuture::from(Promise::resolve(&promise))
                .await
                .map_err(js_err)?;
            let text = answered
                .as_string()
                .ok_or_else(|| FnError::failed("the function runtime answered a non-string"))?;
            parse_envelope(&text)
        })
    }
}
