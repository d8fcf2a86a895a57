//! The calls an agent makes on every tool call (`session.guard`, `policy.check`) as N-API
//! functions written by hand, bound to what they call.
//!
//! A `#[napi]` function pays napi-rs's scaffolding on every call: a callback-info wrapper, a
//! native-borrow scope and barrier (thread-local bookkeeping that makes a reentrant `&mut self`
//! call fail instead of freeing memory in use), a type check per argument, and a length query plus
//! a zeroed heap buffer per string argument.
//! Counted by callgrind, that was about 2,900 of the 6,300 instructions the binding spent on one
//! guard.
//! A [`bound_function`] is made once per session or policy and owns (a clone of) what it calls, so
//! there is no borrow of a class instance to track; it reads its arguments with one N-API call
//! each, and returns the decision as one string.
//!
//! INVARIANT: every callback here runs its body in [`shield_value`] and throws its error as the
//! `FourfoldError` [`FourfoldError::into_js`] builds: no panic crosses into Node, and every error
//! keeps its code and fields, as [`crate::error::shield`] does for `#[napi]` functions.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::{Env, JsError, Unknown};
use napi::sys;

use crate::error::{shield_value, Fallible, FourfoldError, FOURFOLD_ERROR};

/// The most arguments a bound function reads; more are ignored.
const MAX_ARGS: usize = 8;

/// Strings up to this many bytes are read in one N-API call, into a buffer on the stack.
const STACK_STRING_BYTES: usize = 256;

/// What a [`bound_function`] does when JS calls it: its arguments to the string it returns.
pub trait BoundCall: 'static {
    /// Answers one call.
    fn call(&self, args: &Args) -> Fallible<String>;
}

/// The arguments of one call of a bound function, read on demand.
pub struct Args {
    env: sys::napi_env,
    argv: [sys::napi_value; MAX_ARGS],
    argc: usize,
}

/// A request's action as JS passes it: its index in [`crate::policy::ACTIONS`], or its name.
pub enum ActionArg {
    /// The index of a known action.
    Code(u32),
    /// Any other value that is a string (the core names what is wrong with it).
    Name(String),
}

fn napi_failure(what: &str, status: sys::napi_status) -> FourfoldError {
    FourfoldError::new(
        FOURFOLD_ERROR,
        format!("N-API failed to {what} (status {status})"),
    )
}

impl Args {
    /// How many arguments JS passed.
    pub fn len(&self) -> usize {
        self.argc
    }

    fn value(&self, arg_idx: usize) -> Option<sys::napi_value> {
        (arg_idx < self.argc.min(MAX_ARGS)).then(|| self.argv[arg_idx])
    }

    fn is_nullish(&self, value: sys::napi_value) -> Fallible<bool> {
        let mut value_type = sys::ValueType::napi_undefined;
        // SAFETY: `env` and `value` are the live env and argument of the current call.
        let status = unsafe { sys::napi_typeof(self.env, value, &mut value_type) };
        if status != sys::Status::napi_ok {
            return Err(napi_failure("read a type", status));
        }
        Ok(value_type == sys::ValueType::napi_undefined || value_type == sys::ValueType::napi_null)
    }

    /// The string `value`, or `None` when it is not a string.
    fn read_string(&self, value: sys::napi_value) -> Fallible<Option<String>> {
        let mut buffer = [0u8; STACK_STRING_BYTES];
        let mut n_bytes = 0usize;
        // SAFETY: the buffer is writable for its length; N-API writes at most `len - 1` bytes
        // and a NUL, and stores the number of bytes written (without the NUL) in `n_bytes`.
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                self.env,
                value,
                buffer.as_mut_ptr().cast::<c_char>(),
                buffer.len(),
                &mut n_bytes,
            )
        };
        if status == sys::Status::napi_string_expected {
            return Ok(None);
        }
        if status != sys::Status::napi_ok {
            return Err(napi_failure("read a string", status));
        }
        // V8 writes whole characters only (up to 4 bytes each), so with at least 4 bytes to spare
        // besides the NUL the string was not cut short.
        let bytes = if n_bytes + 4 < buffer.len() - 1 {
            buffer[..n_bytes].to_vec()
        } else {
            let mut len = 0usize;
            // SAFETY: a null buffer asks for the length in bytes, without the NUL.
            let status = unsafe {
                sys::napi_get_value_string_utf8(self.env, value, ptr::null_mut(), 0, &mut len)
            };
            if status != sys::Status::napi_ok {
                return Err(napi_failure("read a string's length", status));
            }
            let mut bytes = vec![0u8; len + 1];
            // SAFETY: as above, with a heap buffer of the string's length plus the NUL.
            let status = unsafe {
                sys::napi_get_value_string_utf8(
                    self.env,
                    value,
                    bytes.as_mut_ptr().cast::<c_char>(),
                    bytes.len(),
                    &mut n_bytes,
                )
            };
            if status != sys::Status::napi_ok {
                return Err(napi_failure("read a string", status));
            }
            bytes.truncate(n_bytes);
            bytes
        };
        // N-API writes UTF-8, with lone surrogates replaced.
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| FourfoldError::invalid("a string argument is not valid UTF-8"))
    }

    /// Argument `arg_idx`, a string; `what` names it in the error otherwise.
    pub fn string(&self, arg_idx: usize, what: &str) -> Fallible<String> {
        self.value(arg_idx)
            .map(|value| self.read_string(value))
            .transpose()?
            .flatten()
            .ok_or_else(|| FourfoldError::invalid(format!("{what} must be a string")))
    }

    /// Argument `arg_idx`, a string, or `None` when absent, `undefined` or `null`.
    pub fn optional_string(&self, arg_idx: usize, what: &str) -> Fallible<Option<String>> {
        let Some(value) = self.value(arg_idx) else {
            return Ok(None);
        };
        match self.read_string(value)? {
            Some(text) => Ok(Some(text)),
            None if self.is_nullish(value)? => Ok(None),
            None => Err(FourfoldError::invalid(format!("{what} must be a string"))),
        }
    }

    /// Argument `arg_idx`, a boolean, or `None` when absent, `undefined` or `null`.
    pub fn optional_bool(&self, arg_idx: usize, what: &str) -> Fallible<Option<bool>> {
        let Some(value) = self.value(arg_idx) else {
            return Ok(None);
        };
        let mut flag = false;
        // SAFETY: `env` and `value` are the live env and argument of the current call.
        let status = unsafe { sys::napi_get_value_bool(self.env, value, &mut flag) };
        match status {
            sys::Status::napi_ok => Ok(Some(flag)),
            sys::Status::napi_boolean_expected if self.is_nullish(value)? => Ok(None),
            sys::Status::napi_boolean_expected => {
                Err(FourfoldError::invalid(format!("{what} must be a boolean")))
            }
            status => Err(napi_failure("read a boolean", status)),
        }
    }

    /// Argument `arg_idx`, an action: a number is an action's index, a string its name.
    pub fn action(&self, arg_idx: usize) -> Fallible<ActionArg> {
        let missing = || FourfoldError::invalid("a request needs an `action`");
        let value = self.value(arg_idx).ok_or_else(missing)?;
        let mut code = 0u32;
        // SAFETY: `env` and `value` are the live env and argument of the current call.
        let status = unsafe { sys::napi_get_value_uint32(self.env, value, &mut code) };
        match status {
            sys::Status::napi_ok => Ok(ActionArg::Code(code)),
            sys::Status::napi_number_expected => self
                .read_string(value)?
                .map(ActionArg::Name)
                .ok_or_else(missing),
            status => Err(napi_failure("read a number", status)),
        }
    }
}

/// Makes `text` a JS string; ASCII text as Latin-1, which V8 copies without decoding.
fn js_string(env: sys::napi_env, text: &str) -> Fallible<sys::napi_value> {
    let mut value = ptr::null_mut();
    // SAFETY: `text` is valid UTF-8 of the given length, and ASCII text is the same bytes in
    // Latin-1; `env` is the live env of the call.
    let status = unsafe {
        if text.is_ascii() {
            sys::napi_create_string_latin1(
                env,
                text.as_ptr().cast::<c_char>(),
                text.len() as isize,
                &mut value,
            )
        } else {
            sys::napi_create_string_utf8(
                env,
                text.as_ptr().cast::<c_char>(),
                text.len() as isize,
                &mut value,
            )
        }
    };
    if status != sys::Status::napi_ok {
        return Err(napi_failure("make a string", status));
    }
    Ok(value)
}

unsafe extern "C" fn trampoline<T: BoundCall>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let result = shield_value(|| {
        let mut args = Args {
            env,
            argv: [ptr::null_mut(); MAX_ARGS],
            argc: MAX_ARGS,
        };
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: `info` is this call's; `argv` holds `argc` values, and N-API stores the number
        // of arguments passed (possibly more than it copied) back into `argc`.
        let status = unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut args.argc,
                args.argv.as_mut_ptr(),
                ptr::null_mut(),
                &mut data,
            )
        };
        if status != sys::Status::napi_ok || data.is_null() {
            return Err(napi_failure("read a call's arguments", status));
        }
        // SAFETY: `data` is the `Box<T>` that `bound_function` leaked for this function, freed
        // only by the function's finalizer, which cannot run while the function is being called.
        let bound = unsafe { &*data.cast::<T>() };
        js_string(env, &bound.call(&args)?)
    });
    match result {
        Ok(value) => value,
        Err(error) => {
            let error = error.into_js(&Env::from_raw(env));
            // SAFETY: `env` is the live env of the call; the callback returns right after.
            unsafe { JsError::from(error).throw_into(env) };
            ptr::null_mut()
        }
    }
}

unsafe extern "C" fn finalize<T: BoundCall>(
    _env: sys::napi_env,
    data: *mut c_void,
    _hint: *mut c_void,
) {
    // SAFETY: `data` is the `Box<T>` leaked by `bound_function`; N-API finalizes it once.
    let bound = unsafe { Box::from_raw(data.cast::<T>()) };
    // A panic must not unwind into N-API; there is nobody left to tell, so it is dropped.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(bound)));
}

/// A JS function named `name` that answers each call with `bound.call`; `bound` is dropped when
/// the function is garbage-collected.
pub fn bound_function<'env, T: BoundCall>(
    env: &'env Env,
    name: &str,
    bound: T,
) -> napi::Result<Unknown<'env>> {
    let data = Box::into_raw(Box::new(bound)).cast::<c_void>();
    let mut function = ptr::null_mut();
    // SAFETY: `name` is UTF-8 of the given length; `data` stays valid until `finalize<T>`.
    let status = unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr().cast::<c_char>(),
            name.len() as isize,
            Some(trampoline::<T>),
            data,
            &mut function,
        )
    };
    let status = if status == sys::Status::napi_ok {
        // SAFETY: `function` was just made; the finalizer takes ownership of `data`.
        unsafe {
            sys::napi_add_finalizer(
                env.raw(),
                function,
                data,
                Some(finalize::<T>),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        }
    } else {
        status
    };
    if status != sys::Status::napi_ok {
        // SAFETY: no finalizer owns `data`: it is still ours to free.
        drop(unsafe { Box::from_raw(data.cast::<T>()) });
        return Err(napi::Error::new(
            napi::Status::GenericFailure,
            format!("N-API failed to make the function `{name}` (status {status})"),
        ));
    }
    // SAFETY: `function` is a live value of `env`.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), function) })
}
