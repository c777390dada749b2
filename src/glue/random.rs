//! [`Random`] over the runtime's `crypto.getRandomValues` (a CSPRNG).

use js_sys::{Function, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use crate::signin::random::Random;

/// `crypto.getRandomValues` takes at most 65,536 bytes per call.
const MAX_CALL: usize = 65_536;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CryptoRandom;

impl Random for CryptoRandom {
    fn fill(&self, buf: &mut [u8]) {
        let global = js_sys::global();
        let crypto = Reflect::get(&global, &JsValue::from_str("crypto"))
            .expect("the Workers runtime has a global crypto");
        let get: Function = Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .expect("crypto.getRandomValues exists in the Workers runtime");
        for chunk in buf.chunks_mut(MAX_CALL) {
            let arr = Uint8Array::new_with_length(chunk.len() as u32);
            // A failure here would mean no secure randomness: never go on without it.
            get.call1(&crypto, &arr)
                .expect("crypto.getRandomValues failed");
            arr.copy_to(chunk);
        }
    }
}
