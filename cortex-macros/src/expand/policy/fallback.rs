//! `fallback = path`: when the policy's call ends in `Err` (a rejection, or,
//! for a function returning `Result`, its own error), the fallback is
//! called with the same arguments instead.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Path;

use super::signature::Params;
use super::Policy;
use crate::expand::hidden;
use crate::expand::nest::{Ctx, Inner};

/// At most this many `#[cfg]`'d arguments: the fallback call is written
/// once per combination of them.
const MAX_CFG_ARGS: usize = 4;

pub(super) fn wrap(
    policy: &Policy,
    path: &Path,
    ctx: &Ctx,
    index: usize,
    inner: Inner,
) -> syn::Result<Inner> {
    let krate = &policy.krate;
    let (save, restore) = ctx.params.saved(krate, index);
    let call = call(&ctx.params, path, ctx.body.is_async())?;
    let result = inner.expr();
    let ok = quote!(::core::result::Result::Ok);
    let err = quote!(::core::result::Result::Err);
    let handled = quote! {
        match #result {
            #ok(v) => v,
            #err(_) => { #restore #call }
        }
    };
    // A function returning `Result` answers with the fallback's `Result`;
    // in the wrapped region the value is plain once handled, and travels
    // on as `Ok` inside the outer policies.
    let expr = if !ctx.wrapped {
        quote! {{
            #save
            match #result {
                #ok(v) => #ok(v),
                #err(_) => { #restore #call }
            }
        }}
    } else if index == ctx.first_policy {
        quote!({ #save #handled })
    } else {
        quote!({ #save #ok(#handled) })
    };
    Ok(Inner::Expr(expr))
}

/// `fallback(args)` (awaited for an async function); with `#[cfg]`'d
/// arguments, one call per combination, each under its `#[cfg]`.
fn call(params: &Params, path: &Path, is_async: bool) -> syn::Result<TokenStream> {
    let wait = is_async.then(|| quote!(.await));
    let gated: Vec<usize> = (0..params.list.len())
        .filter(|&i| !params.list[i].cfg.is_empty())
        .collect();
    let gated_ref = &gated;
    let args_for = |mask: usize| -> Vec<&syn::Ident> {
        params
            .list
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match gated_ref.iter().position(|&g| g == i) {
                Some(b) if mask & (1 << b) == 0 => None,
                _ => Some(&p.ident),
            })
            .collect()
    };
    if gated.is_empty() {
        let args = args_for(0);
        return Ok(quote_spanned!(path.span()=> #path(#(#args),*) #wait));
    }
    if gated.len() > MAX_CFG_ARGS {
        return Err(syn::Error::new_spanned(
            path,
            format!(
                "a fallback can be called with at most {MAX_CFG_ARGS} `#[cfg]` arguments; gate the whole function instead"
            ),
        ));
    }
    let result = hidden("__cortex_fallback");
    let mut stmts = TokenStream::new();
    for mask in 0..(1usize << gated.len()) {
        let preds = gated.iter().enumerate().map(|(b, &i)| {
            let present = predicates(&params.list[i].cfg);
            if mask & (1 << b) != 0 {
                quote!(all(#(#present),*))
            } else {
                quote!(not(all(#(#present),*)))
            }
        });
        let args = args_for(mask);
        stmts.extend(quote_spanned! {path.span()=>
            #[cfg(all(#(#preds),*))]
            let #result = #path(#(#args),*);
        });
    }
    Ok(quote!({ #stmts #result #wait }))
}

/// The predicates of `#[cfg(..)]` attributes.
fn predicates(attrs: &[syn::Attribute]) -> Vec<TokenStream> {
    attrs
        .iter()
        .filter_map(|a| match &a.meta {
            syn::Meta::List(list) => Some(list.tokens.clone()),
            _ => None,
        })
        .collect()
}
