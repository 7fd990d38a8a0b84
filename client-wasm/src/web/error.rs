//! Errors of the web layer: a JavaScript exception turned once into a Rust error whose message
//! names the browser API that failed, for display in the page.

use std::fmt;
use wasm_bindgen::{JsCast, JsValue};

/// A failed browser call.
#[derive(Debug, Clone)]
pub struct WebError {
    /// The API that failed, e.g. `getUserMedia`.
    pub api: &'static str,
    /// The exception's name (`NotAllowedError`, ...), when it had one.
    pub name: Option<String>,
    /// The exception's message.
    pub message: String,
}

impl WebError {
    /// Converts a thrown value from `api`.
    pub fn from_js(api: &'static str, value: JsValue) -> Self {
        if let Some(e) = value.dyn_ref::<js_sys::Error>() {
            return WebError {
                api,
                name: Some(String::from(e.name())),
                message: String::from(e.message()),
            };
        }
        if let Some(e) = value.dyn_ref::<web_sys::DomException>() {
            return WebError {
                api,
                name: Some(e.name()),
                message: e.message(),
            };
        }
        let message = value.as_string().unwrap_or_else(|| format!("{value:?}"));
        WebError {
            api,
            name: None,
            message,
        }
    }

    /// An error that did not come from JavaScript.
    pub fn new(api: &'static str, message: impl Into<String>) -> Self {
        WebError {
            api,
            name: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} failed: {name}: {}", self.api, self.message),
            None => write!(f, "{} failed: {}", self.api, self.message),
        }
    }
}

impl std::error::Error for WebError {}

/// `map_err` helper: `.map_err(js("createOffer"))`.
pub fn js(api: &'static str) -> impl Fn(JsValue) -> WebError {
    move |v| WebError::from_js(api, v)
}

/// Calls `target`'s method `name` with `args`, by name: one this web-sys version has no
/// binding for, or one a browser may lack (then an error saying so).
pub fn call_method(
    target: &JsValue,
    name: &'static str,
    args: &[&JsValue],
) -> Result<JsValue, WebError> {
    let f = js_sys::Reflect::get(target, &JsValue::from_str(name))
        .map_err(js(name))?
        .dyn_into::<js_sys::Function>()
        .map_err(|_| WebError::new(name, "not supported by this browser"))?;
    let args: js_sys::Array = args.iter().copied().collect();
    f.apply(target, &args).map_err(js(name))
}

/// [`call_method`] for a method that returns a promise: the promise.
pub fn call_promise(
    target: &JsValue,
    name: &'static str,
    args: &[&JsValue],
) -> Result<js_sys::Promise, WebError> {
    call_method(target, name, args)?
        .dyn_into::<js_sys::Promise>()
        .map_err(js(name))
}

/// Awaits a JS promise, converting a rejection into a [`WebError`] naming `api`.
pub async fn await_promise(api: &'static str, p: js_sys::Promise) -> Result<JsValue, WebError> {
    wasm_bindgen_futures::JsFuture::from(p)
        .await
        .map_err(js(api))
}
