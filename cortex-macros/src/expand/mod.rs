//! Code generation, one file per macro; this file holds what they share.

pub(crate) mod counted;
mod fused;
pub(crate) mod health_check;
pub(crate) mod policy;
pub(crate) mod timed;
pub(crate) mod traced;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{parse_quote, Ident, ItemFn, LitStr, Meta};

use crate::item::{self, Body};

/// Label names a user's `labels(...)` may not use.
pub(crate) fn reserved_labels() -> Vec<&'static str> {
    let mut reserved = cortex_rules::FUNCTION_LABELS.to_vec();
    reserved.extend(cortex_rules::RESERVED_LABELS);
    reserved
}

/// Refuses a second copy of the same attribute: it would count every call
/// twice.
pub(crate) fn refuse_repeat(item: &ItemFn, name: &str) -> syn::Result<()> {
    match item.attrs.iter().find(|attr| {
        let path = attr.path();
        path.segments.last().is_some_and(|s| s.ident == name)
            && (path.segments.len() == 1
                || path.segments[path.segments.len() - 2].ident == "cortex")
    }) {
        Some(attr) => Err(syn::Error::new_spanned(
            attr,
            format!(
                "#[{name}] is applied twice to this function; every call would be recorded twice"
            ),
        )),
        None => Ok(()),
    }
}

/// Removes a sibling `#[cortex::<name>]` (or `#[::cortex::<name>]`) attribute
/// from the function and returns its arguments, so two attributes can be
/// expanded as one. Only these spellings are recognised: a bare `#[timed]`
/// may belong to another crate, and is left alone (it still works, unfused).
pub(crate) fn take_sibling(item: &mut ItemFn, name: &str) -> Option<TokenStream> {
    let pos = item.attrs.iter().position(|attr| {
        let path = attr.path();
        path.segments.len() == 2
            && path.segments[0].ident == "cortex"
            && path.segments[1].ident == name
    })?;
    let attr = item.attrs.remove(pos);
    Some(match attr.meta {
        Meta::List(list) => list.tokens,
        // `#[cortex::timed]` has no arguments; `= value` forms are not ours
        // and are parsed as empty so the error points at nothing misleading.
        _ => TokenStream::new(),
    })
}

/// Wraps the body so the call's return value is seen: `start` makes a guard
/// with `finish(Outcome)`, and a guard dropped unfinished means the call
/// unwound or was cancelled.
pub(crate) fn wrap_observing_result(
    item: &mut ItemFn,
    krate: &TokenStream,
    statics: TokenStream,
    start: TokenStream,
) -> syn::Result<()> {
    let call = hidden("__cortex_call");
    let out = hidden("__cortex_out");
    let finish = quote! {
        {
            #[allow(unused_imports)]
            use #krate::__private::{IsResult as _, NotResult as _};
            #call.finish((&#out).__cortex_outcome());
        }
    };
    wrap_body(
        item,
        krate,
        Wrap {
            statics,
            call,
            out,
            start_sync: start.clone(),
            start_async: start,
            prologue: TokenStream::new(),
            finish,
            instrument: |_, future| future,
        },
    )
}

/// The parts of a wrapped body; see [`wrap_body`].
pub(crate) struct Wrap {
    /// Items put first in the body (the call site's statics).
    pub(crate) statics: TokenStream,
    /// The guard's name, and the return value's.
    pub(crate) call: Ident,
    pub(crate) out: Ident,
    /// Makes the guard, for sync and for async bodies.
    pub(crate) start_sync: TokenStream,
    pub(crate) start_async: TokenStream,
    /// Runs after the guard is made, before the body.
    pub(crate) prologue: TokenStream,
    /// Runs after the body, with `out` in scope.
    pub(crate) finish: TokenStream,
    /// Wraps an async body's future (given the guard's name).
    pub(crate) instrument: fn(&Ident, TokenStream) -> TokenStream,
}

/// Rewrites the body as `statics; let call = start; prologue; let out =
/// body; finish; out`, for every function shape: the sync body runs in a
/// closure (so `return` returns from it), the async one as a future of the
/// declared output type, and an `#[async_trait]` body inside its boxed
/// future.
pub(crate) fn wrap_body(item: &mut ItemFn, krate: &TokenStream, w: Wrap) -> syn::Result<()> {
    let Wrap {
        statics,
        call,
        out,
        start_sync,
        start_async,
        prologue,
        finish,
        instrument,
    } = w;
    let output = item::nameable_output(item).unwrap_or_else(|| quote!(_));
    match item::body_kind(item) {
        Body::Sync => {
            let block = &item.block;
            item.block = parse_quote!({
                #statics
                #[allow(unused_mut)]
                let mut #call = #start_sync;
                #prologue
                #[allow(clippy::redundant_closure_call, unused_mut)]
                let #out = #krate::__private::call_once::<#output, _>(move || #block);
                #finish
                #out
            });
        }
        Body::Async => {
            let block = &item.block;
            let future = instrument(
                &call,
                quote!(#krate::__private::typed_future::<#output, _>(async move #block)),
            );
            item.block = parse_quote!({
                #statics
                #[allow(unused_mut)]
                let mut #call = #start_async;
                #prologue
                let #out = #future.await;
                #finish
                #out
            });
        }
        Body::AsyncTrait(index) => {
            let inner = item::async_trait_block_mut(&mut item.block, index).ok_or_else(|| {
                syn::Error::new_spanned(&item.sig, "unexpected #[async_trait] body")
            })?;
            let block = inner.clone();
            let future = instrument(&call, quote!(async move #block));
            *inner = parse_quote!({
                #[allow(unused_mut)]
                let mut #call = #start_async;
                #prologue
                let #out = #future.await;
                #finish
                #out
            });
            item.block
                .stmts
                .insert(0, syn::Stmt::Item(syn::Item::Verbatim(statics)));
        }
    }
    Ok(())
}

/// On a bad attribute: the user's item unchanged, plus the error, so only
/// that one error shows and the IDE still sees the function.
pub(crate) fn with_error(item: TokenStream, err: &syn::Error) -> TokenStream {
    let error = err.to_compile_error();
    quote!(#item #error)
}

/// A local name the user's code cannot see or clash with.
pub(crate) fn hidden(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// `FnInfo { .. }` for a site.
pub(crate) fn fn_info(
    krate: &TokenStream,
    metric: &str,
    help: &Option<LitStr>,
    function: &str,
    labels: &[(String, LitStr)],
) -> TokenStream {
    let help = help.as_ref().map(LitStr::value).unwrap_or_default();
    let label_pairs = labels.iter().map(|(k, v)| quote!((#k, #v)));
    quote! {
        #krate::__private::FnInfo {
            metric: #metric,
            help: #help,
            function: #function,
            module: ::core::module_path!(),
            labels: &[#(#label_pairs),*],
        }
    }
}

/// The linker entry that makes the site's series exist before the first call.
pub(crate) fn registration(krate: &TokenStream, entry: &Ident, site: TokenStream) -> TokenStream {
    registration_in(
        krate,
        quote!(#krate::__private::SITES),
        entry,
        quote!(#krate::__private::Site),
        site,
    )
}

/// An entry in one of the runtime's link-time slices.
pub(crate) fn registration_in(
    krate: &TokenStream,
    slice: TokenStream,
    entry: &Ident,
    ty: TokenStream,
    value: TokenStream,
) -> TokenStream {
    quote! {
        #[#krate::__private::linkme::distributed_slice(#slice)]
        #[linkme(crate = #krate::__private::linkme)]
        static #entry: #ty = #value;
    }
}
