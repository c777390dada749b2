//! `export!`: the few lines that turn an app crate into a Worker. It writes
//! the Worker's `fetch` entry point and one Durable Object class per object
//! kind — the runtime's own (`Shard`; with the crate's features `signin`:
//! `Auth`; `jobs`: `JobLedger`, `Workflow`; `cache`: `Cache`; `channels`:
//! `Channel`, `ChannelDirectory`) and the app's — each a thin wrapper
//! around the shared host. The queue and cron handlers come with `jobs`. Nothing is exported by the library
//! itself; an app that does not call `export!` exports nothing.
//!
//! ```ignore
//! // examples/minimal/src/lib.rs
//! fn app() -> pylon_workers::app::App {
//!     pylon_workers::app::App::new(include_str!("../schema.json"))
//! }
//! pylon_workers::export!(app);
//! ```
//!
//! With kinds of the app's own (each an `Object` over the Durable Object
//! storage, `runtime::DoSql`; see docs/host.md), each bound in
//! wrangler.toml under its class name as the binding name too, and
//! reached at `/v1/objects/{Class}/{name}/…`:
//!
//! ```ignore
//! pylon_workers::export!(app, objects { Lobby: my_app::Lobby<pylon_workers::runtime::DoSql> });
//! ```
//!
//! The app crate depends on `worker` (wasm32 only, the same pinned version
//! as this crate), because the entry-point macros name it.

/// Exports the Worker of an app: see the module docs of `pylon_workers::export`.
#[macro_export]
macro_rules! export {
    ($app:path) => {
        $crate::export!($app, objects {});
    };
    ($app:path, objects { $($class:ident : $kind:ty),* $(,)? }) => {
        // wasm-bindgen's expansion of the classes names `wasm_bindgen`.
        #[cfg(target_arch = "wasm32")]
        use ::worker::wasm_bindgen;

        /// The app, built once per isolate.
        #[cfg(target_arch = "wasm32")]
        fn __pylon_app() -> &'static $crate::app::App {
            static APP: ::std::sync::OnceLock<$crate::app::App> = ::std::sync::OnceLock::new();
            APP.get_or_init(|| {
                $app()
                    .with_kinds(&[$(stringify!($class)),*])
                    .with_script_functions(::std::sync::Arc::new($crate::runtime::BundledFunctions))
            })
        }

        #[cfg(target_arch = "wasm32")]
        #[::worker::event(fetch)]
        async fn __pylon_fetch(
            req: ::worker::Request,
            env: ::worker::Env,
            ctx: ::worker::Context,
        ) -> ::worker::Result<::worker::Response> {
            $crate::runtime::fetch(req, env, ctx, __pylon_app()).await
        }

        $crate::__pylon_if_jobs! {
            /// The jobs' queues and their dead-letter queue (docs/jobs.md).
            #[cfg(target_arch = "wasm32")]
            #[::worker::event(queue)]
            async fn __pylon_queue(
                batch: $crate::runtime::JobBatch,
                env: ::worker::Env,
                _ctx: ::worker::Context,
            ) -> ::worker::Result<()> {
                $crate::runtime::queue(batch, env, __pylon_app()).await
            }

            /// Cron triggers: the manifest's `crons` (docs/jobs.md).
            #[cfg(target_arch = "wasm32")]
            #[::worker::event(scheduled)]
            async fn __pylon_scheduled(
                event: ::worker::ScheduledEvent,
                env: ::worker::Env,
                _ctx: ::worker::ScheduleContext,
            ) {
                $crate::runtime::scheduled(event, env, __pylon_app()).await
            }

            $crate::__pylon_object!(JobLedger, $crate::runtime::JobLedgerObject, alarm);
            $crate::__pylon_object!(Workflow, $crate::runtime::WorkflowObject, alarm);
        }
        $crate::__pylon_if_cache! {
            $crate::__pylon_object!(Cache, $crate::runtime::CacheObject, alarm);
        }
        $crate::__pylon_if_channels! {
            $crate::__pylon_object!(Channel, $crate::runtime::ChannelObject);
            $crate::__pylon_object!(ChannelDirectory, $crate::runtime::ChannelDirectoryObject, fetch);
        }

        $crate::__pylon_if_signin! {
            $crate::__pylon_object!(Auth, $crate::runtime::AuthStore, fetch);
        }

        $crate::__pylon_object!(Shard, $crate::runtime::LiveShard);
        $( $crate::__pylon_object!($class, $kind); )*
    };
}

/// `__pylon_if_{feature}! { items }`: the items when this crate is built
/// with the feature, nothing without it. `export!` expands in the app's
/// crate, where `cfg(feature = …)` would test the app's own features, so
/// the choice is made here, by which of two definitions is compiled.
#[cfg(feature = "signin")]
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_if_signin {
    ($($items:tt)*) => { $($items)* };
}
#[cfg(not(feature = "signin"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_if_signin {
    ($($items:tt)*) => {};
}

#[cfg(feature = "jobs")]
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_if_jobs {
    ($($items:tt)*) => { $($items)* };
}
#[cfg(not(feature = "jobs"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_if_jobs {
    ($($items:tt)*) => {};
}

#[cfg(feature = "cache")]
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_if_cache {
    ($($items:tt)*) => { $($items)* };
}
#[cfg(not(feature = "cache"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_if_cache {
    ($($items:tt)*) => {};
}

#[cfg(feature = "channels")]
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_if_channels {
    ($($items:tt)*) => { $($items)* };
}
#[cfg(not(feature = "channels"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_if_channels {
    ($($items:tt)*) => {};
}

/// One Durable Object class around the host (used by `export!`); with
/// `fetch`, a class that answers requests only (no sockets, no alarm), so
/// no code for the other callbacks goes into the bundle; with `alarm`,
/// requests and timers, no sockets.
#[doc(hidden)]
#[macro_export]
macro_rules! __pylon_object {
    ($class:ident, $kind:ty, fetch) => {
        $crate::__pylon_object!(@class $class, $kind, (fetch), {});
    };
    ($class:ident, $kind:ty, alarm) => {
        $crate::__pylon_object!(@class $class, $kind, (alarm), {
            async fn alarm(&self) -> ::worker::Result<::worker::Response> {
                self.host.alarm().await
            }
        });
    };
    ($class:ident, $kind:ty) => {
        $crate::__pylon_object!(@class $class, $kind, (), {
            async fn websocket_message(
                &self,
                ws: ::worker::WebSocket,
                message: ::worker::WebSocketIncomingMessage,
            ) -> ::worker::Result<()> {
                self.host.websocket_message(ws, message).await
            }

            async fn websocket_close(
                &self,
                ws: ::worker::WebSocket,
                code: usize,
                reason: String,
                was_clean: bool,
            ) -> ::worker::Result<()> {
                self.host.websocket_close(ws, code, reason, was_clean).await
            }

            async fn websocket_error(
                &self,
                ws: ::worker::WebSocket,
                error: ::worker::Error,
            ) -> ::worker::Result<()> {
                self.host.websocket_error(ws, error).await
            }

            async fn alarm(&self) -> ::worker::Result<::worker::Response> {
                self.host.alarm().await
            }
        });
    };
    // The class itself: bound to the callbacks it implements.
    (@class $class:ident, $kind:ty, ($($bound:tt)*), { $($callbacks:tt)* }) => {
        #[cfg(target_arch = "wasm32")]
        #[::worker::durable_object($($bound)*)]
        pub struct $class {
            host: $crate::runtime::Host,
        }

        #[cfg(target_arch = "wasm32")]
        impl ::worker::DurableObject for $class {
            fn new(state: ::worker::State, env: ::worker::Env) -> Self {
                Self {
                    host: $crate::runtime::Host::new::<$kind>(state, env, __pylon_app()),
                }
            }

            async fn fetch(&self, req: ::worker::Request) -> ::worker::Result<::worker::Response> {
                self.host.fetch(req).await
            }

            $($callbacks)*
        }
    };
}
