//! One function's stack, put together: the first attribute written is the
//! outermost layer, for every Cortex attribute however it is spelled.
//!
//! Each layer wraps the expression of the layers below it. The innermost
//! expression is the user's block, run in a closure (sync) or an async
//! block (async) so that its `return` and `?` stay inside it; the outermost
//! expression becomes the new body, after the statics of every layer.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, Type};

use super::policy::signature::{self, Params};
use super::{hidden, Layer};
use crate::item::{self, Body, Output};
use crate::stack::Kind;

/// What every layer of one function needs to know about it.
pub(crate) struct Ctx {
    pub(crate) body: Body,
    pub(crate) output: Output,
    /// The type each layer's value has (`output.ty`, as an expression can
    /// name it).
    pub(crate) value: TokenStream,
    /// The function's name (`r#type` is `type`).
    pub(crate) function: String,
    /// A nested fn whose type name is the function's full path, impl and
    /// trait included: the default identity of every site.
    pub(crate) scope: Ident,
    /// The arguments, when a retry or a fallback uses them again.
    pub(crate) params: Params,
    /// A fallback on a function that does not return a `Result`: between
    /// the outermost and the innermost policy the value travels as
    /// `Ok::<R, resilience::Error>`, so rejections are the only errors.
    pub(crate) wrapped: bool,
    pub(crate) first_policy: usize,
    pub(crate) last_policy: usize,
    /// Converts a policy's rejection into the function's return type.
    pub(crate) reject: Ident,
    /// The `cortex` path of the outermost layer, for shared helpers.
    pub(crate) krate: TokenStream,
    /// The static holding the function's `#[objective]`, if it has one.
    pub(crate) objective: Option<Ident>,
}

impl Ctx {
    /// The type of the value layer `index` produces.
    pub(crate) fn carried(&self, index: usize) -> TokenStream {
        if self.wrapped && self.first_policy < index && index <= self.last_policy {
            self.wrapped_type()
        } else {
            self.value.clone()
        }
    }

    pub(crate) fn wrapped_type(&self) -> TokenStream {
        let ty = &self.value;
        let krate = &self.krate;
        quote!(::core::result::Result<#ty, #krate::resilience::Error>)
    }
}

/// The expression a layer wraps.
pub(crate) enum Inner {
    /// A value (may contain `.await` in an async body).
    Expr(TokenStream),
    /// A future that owns what it captures, not awaited yet.
    Future(TokenStream),
}

impl Inner {
    pub(crate) fn expr(self) -> TokenStream {
        match self {
            Inner::Expr(e) => e,
            Inner::Future(f) => quote!(#f.await),
        }
    }

    /// As a future of type `ty`.
    pub(crate) fn future(self, krate: &TokenStream, ty: &TokenStream) -> TokenStream {
        match self {
            Inner::Future(f) => f,
            Inner::Expr(e) => {
                quote!(#krate::__private::typed_future::<#ty, _>(async move { #e }))
            }
        }
    }
}

pub(crate) fn generate(layers: Vec<Layer>, mut item: ItemFn) -> syn::Result<TokenStream> {
    refuse_repeats(&layers)?;
    // An objective is no layer: it belongs to the counted and timed sites.
    let (objectives, layers): (Vec<Layer>, Vec<Layer>) = layers
        .into_iter()
        .partition(|l| matches!(l, Layer::Objective(_)));
    let objective = match objectives.into_iter().next() {
        Some(Layer::Objective(o)) => {
            let ident = super::objective::static_name();
            let statics = o.generate(&layers, &item::function_name(&item), &ident)?;
            Some((ident, statics))
        }
        _ => None,
    };
    if layers.is_empty() {
        return Ok(quote!(#item));
    }
    let layers = fuse(layers);
    let body = item::body(&item);
    let output = item::output(&item, body);
    let policies: Vec<usize> = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l, Layer::Policy(_)))
        .map(|(i, _)| i)
        .collect();
    let policy_at = |i: usize| match &layers[i] {
        Layer::Policy(p) => Some(p),
        _ => None,
    };
    let has_retry = policies
        .iter()
        .any(|&i| policy_at(i).is_some_and(|p| p.kind == Kind::Retry));
    let has_fallback = policies
        .iter()
        .any(|&i| policy_at(i).is_some_and(|p| p.fallback.is_some()));
    let mut wrapped = false;
    if let Some(&first) = policies.first() {
        check_policies(&layers, &policies, &item, body, &output)?;
        wrapped = has_fallback && !super::policy::mode::returns_result(&output);
        if wrapped && policy_at(first).is_some_and(|p| p.fallback.is_none()) {
            return Err(syn::Error::new(
                layers[first].span(),
                "this function does not return a `Result`, so a rejection can only be answered by a fallback on the outermost policy attribute: add `fallback = ...` here",
            ));
        }
    }
    let sees_value = layers.iter().any(Layer::sees_value);
    let inline = check_track_caller(&layers, &item, body, sees_value)?;
    let params = signature::analyse(&mut item.sig, body, has_retry, has_fallback)?;

    let krate = layers[0].krate().clone();
    let value = output.ty.clone();
    let ctx = Ctx {
        body,
        output,
        value,
        function: item::function_name(&item),
        scope: hidden("__cortex_scope"),
        params,
        wrapped,
        first_policy: policies.first().copied().unwrap_or(0),
        last_policy: policies.last().copied().unwrap_or(0),
        reject: hidden("__cortex_reject"),
        krate,
        objective: objective.as_ref().map(|(ident, _)| ident.clone()),
    };

    // The code that runs on each call, and where it is.
    let block = match body {
        Body::Sync | Body::AsyncFn => item.block.as_ref().clone(),
        Body::Future { index } => item::future_block_mut(&mut item.block, index)
            .map(|a| a.block.clone())
            .ok_or_else(|| syn::Error::new_spanned(&item.sig, "unexpected async body"))?,
    };
    let block = ctx.params.destructure(block);
    let krate = &ctx.krate;
    let ty = &ctx.value;
    let mut inner = if !sees_value || inline {
        Inner::Expr(quote!(#block))
    } else if body.is_async() {
        Inner::Future(quote!(#krate::__private::typed_future::<#ty, _>(async move #block)))
    } else {
        Inner::Expr(quote!(#krate::__private::call_once::<#ty, _>(move || #block)))
    };

    let scope = &ctx.scope;
    let mut statics = quote! {
        fn #scope() -> &'static str {
            ::core::any::type_name_of_val(&#scope)
        }
    };
    if let Some((_, objective)) = objective {
        statics.extend(objective);
    }
    for (index, layer) in layers.iter().enumerate().rev() {
        let (items, wrapped_inner) = match layer {
            Layer::Counted(c) => c.layer(&ctx, index, inner),
            Layer::Timed(t) => t.layer(&ctx, index, inner),
            Layer::Fused(c, t) => super::fused::layer(c, t, &ctx, index, inner),
            Layer::Traced(t) => t.layer(&ctx, index, inner),
            Layer::Policy(p) => p.layer(&ctx, index, inner)?,
            Layer::Objective(_) => (TokenStream::new(), inner),
        };
        statics.extend(items);
        inner = wrapped_inner;
    }
    let lets = super::policy::mode::lets(&ctx, &layers, &policies);
    let expr = inner.expr();
    let expr = if ctx.output.never {
        quote!(match #expr {})
    } else {
        expr
    };
    let core: syn::Block = syn::parse2(quote! {{
        #lets
        #expr
    }})?;
    let statics = syn::Stmt::Item(syn::Item::Verbatim(statics));
    match body {
        Body::Sync | Body::AsyncFn => {
            let mut block = core;
            block.stmts.insert(0, statics);
            *item.block = block;
        }
        Body::Future { index } => {
            if let Some(async_block) = item::future_block_mut(&mut item.block, index) {
                async_block.block = core;
            }
            item.block.stmts.insert(0, statics);
        }
    }
    Ok(quote!(#item))
}

/// Counting, timing or tracing one call twice would record it twice; two
/// policies of one kind need names of their own.
fn refuse_repeats(layers: &[Layer]) -> syn::Result<()> {
    for (i, layer) in layers.iter().enumerate() {
        let kind = layer.kind();
        let Some(earlier) = layers[..i].iter().find(|l| l.kind() == kind) else {
            continue;
        };
        let message = match (layer, earlier) {
            (Layer::Policy(p), Layer::Policy(q)) => match (&p.name, &q.name) {
                (Some(a), Some(b)) if a.value() != b.value() => continue,
                _ => format!(
                    "a second #[{}] on this function needs a `name = \"...\"` of its own, different from the first one's",
                    kind.name()
                ),
            },
            (Layer::Objective(_), _) => {
                "a function has one objective: give one #[objective] with both `success_rate` and `latency`, or share a `const` objective".to_owned()
            }
            _ => format!(
                "#[{}] is applied twice to this function; every call would be recorded twice",
                kind.name()
            ),
        };
        return Err(syn::Error::new(layer.span(), message));
    }
    Ok(())
}

/// `#[counted]` next to `#[timed]` (either order): one fused layer.
fn fuse(layers: Vec<Layer>) -> Vec<Layer> {
    let mut out: Vec<Layer> = Vec::with_capacity(layers.len());
    for layer in layers {
        match (out.pop(), layer) {
            (Some(Layer::Counted(c)), Layer::Timed(t))
            | (Some(Layer::Timed(t)), Layer::Counted(c)) => out.push(Layer::Fused(c, t)),
            (previous, layer) => {
                out.extend(previous);
                out.push(layer);
            }
        }
    }
    out
}

fn check_policies(
    layers: &[Layer],
    policies: &[usize],
    item: &ItemFn,
    body: Body,
    output: &Output,
) -> syn::Result<()> {
    for &i in policies {
        let Layer::Policy(p) = &layers[i] else {
            continue;
        };
        if !body.is_async() && matches!(p.kind, Kind::Timeout | Kind::RateLimit) {
            let what = if p.kind == Kind::Timeout {
                "#[timeout] needs an async fn: a running sync call cannot be stopped"
            } else {
                "#[rate_limit] needs an async fn (it waits for permits asynchronously)"
            };
            return Err(syn::Error::new_spanned(item.sig.fn_token, what));
        }
    }
    let span = output
        .declared
        .as_ref()
        .map_or_else(|| item.sig.ident.span(), Spanned::span);
    if output.never {
        return Err(syn::Error::new(
            span,
            "a function that never returns (`-> !`) cannot be under a resilience policy: there is no call outcome to protect",
        ));
    }
    let has_fallback = policies
        .iter()
        .any(|&i| matches!(&layers[i], Layer::Policy(p) if p.fallback.is_some()));
    let value_type: Option<&Type> = match body {
        Body::Future { .. } => None,
        _ => output.declared.as_ref(),
    };
    let clearly_not = match (&item.sig.output, value_type) {
        (syn::ReturnType::Default, _) => true,
        (_, Some(ty)) => super::policy::mode::clearly_not_result(ty),
        _ => false,
    };
    if !has_fallback && clearly_not {
        return Err(syn::Error::new(
            span,
            "a function under a resilience policy returns `Result<T, E>` with `E: From<cortex::resilience::Error>` (so a rejection can be returned), or names a `fallback`",
        ));
    }
    Ok(())
}

/// `#[track_caller]` only works on code that runs in the function itself,
/// not in a closure: a sync body runs in place when no layer needs its value
/// (only `#[timed]`), or when it has no `return`/`?` to leave it early.
/// Returns whether the body runs in place.
fn check_track_caller(
    layers: &[Layer],
    item: &ItemFn,
    body: Body,
    sees_value: bool,
) -> syn::Result<bool> {
    let Some(attr) = item::track_caller(item) else {
        return Ok(false);
    };
    if body != Body::Sync || !sees_value {
        return Ok(false);
    }
    if let Some(policy) = layers.iter().find(|l| matches!(l, Layer::Policy(_))) {
        return Err(syn::Error::new_spanned(
            attr,
            format!(
                "#[track_caller] cannot be kept under #[{}]: the policy runs the body in a closure, where callers cannot be tracked; remove #[track_caller] or the policy",
                policy.kind().name()
            ),
        ));
    }
    if let Some(span) = item::early_exit(&item.block) {
        let layer = layers
            .iter()
            .find(|l| l.sees_value())
            .map_or("counted", |l| l.kind().name());
        return Err(syn::Error::new(
            span,
            format!(
                "with #[track_caller], #[{layer}] runs the body in place to keep the caller's location, so the body cannot leave early: write it without `return` and `?` (or remove #[track_caller])"
            ),
        ));
    }
    Ok(true)
}

/// A site's `line!()`, pointing at its attribute.
pub(crate) fn line_of(span: Span) -> TokenStream {
    quote_spanned!(span=> ::core::line!())
}
