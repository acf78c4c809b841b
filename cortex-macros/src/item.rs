//! The annotated function: what shape it has and where its body is.

use proc_macro2::TokenStream;
use syn::{Block, Expr, ItemFn, ReturnType, Stmt};

/// Where the code that runs on each call lives.
pub(crate) enum Body {
    /// A plain `fn`: the block itself.
    Sync,
    /// An `async fn`: the block, run on first poll.
    Async,
    /// A fn rewritten by `#[async_trait]`: its body is
    /// `Box::pin(async move { ... })` and the call really happens inside that
    /// async block; the index is the statement holding it.
    AsyncTrait(usize),
}

pub(crate) fn parse(tokens: TokenStream, macro_name: &str) -> syn::Result<ItemFn> {
    let item: ItemFn = match syn::parse2(tokens.clone()) {
        Ok(item) => item,
        Err(err) => {
            // A trait method without a default body parses as a trait item.
            if let Ok(decl) = syn::parse2::<syn::TraitItemFn>(tokens) {
                if decl.default.is_none() {
                    return Err(syn::Error::new_spanned(
                        &decl.sig,
                        format!(
                            "#[{macro_name}] needs a function body; put it on the method in the impl, not on the trait's declaration"
                        ),
                    ));
                }
            }
            return Err(syn::Error::new(
                err.span(),
                format!("#[{macro_name}] can only be used on a function: {err}"),
            ));
        }
    };
    if let Some(constness) = &item.sig.constness {
        return Err(syn::Error::new_spanned(
            constness,
            format!(
                "#[{macro_name}] cannot be used on a `const fn`: recording a call needs run-time code; remove `const` or the attribute"
            ),
        ));
    }
    Ok(item)
}

pub(crate) fn body_kind(item: &ItemFn) -> Body {
    if item.sig.asyncness.is_some() {
        return Body::Async;
    }
    match async_trait_block(&item.block) {
        Some(i) => Body::AsyncTrait(i),
        None => Body::Sync,
    }
}

/// Finds `Box::pin(async move { .. })` as the last statement of the block,
/// the shape `#[async_trait]` gives its methods.
fn async_trait_block(block: &Block) -> Option<usize> {
    let last = block.stmts.len().checked_sub(1)?;
    let Stmt::Expr(expr, None) = &block.stmts[last] else {
        return None;
    };
    inner_async(expr).map(|_| last)
}

fn inner_async(expr: &Expr) -> Option<&syn::ExprAsync> {
    let Expr::Call(call) = expr else { return None };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = func
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let is_box_pin = segments.ends_with(&["Box".into(), "pin".into()]);
    if !is_box_pin || call.args.len() != 1 {
        return None;
    }
    match call.args.first() {
        Some(Expr::Async(a)) if a.capture.is_some() => Some(a),
        _ => None,
    }
}

/// The async block inside an `#[async_trait]` body, to rewrite in place.
pub(crate) fn async_trait_block_mut(block: &mut Block, index: usize) -> Option<&mut Block> {
    let Stmt::Expr(Expr::Call(call), None) = &mut block.stmts[index] else {
        return None;
    };
    match call.args.first_mut() {
        Some(Expr::Async(a)) => Some(&mut a.block),
        _ => None,
    }
}

/// The function's name as the `function` label shows it (`r#type` -> `type`).
pub(crate) fn function_name(item: &ItemFn) -> String {
    let name = item.sig.ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

/// The declared output type, when it can be written in an expression
/// (no `impl Trait`), for an inference hint.
pub(crate) fn nameable_output(item: &ItemFn) -> Option<TokenStream> {
    match &item.sig.output {
        ReturnType::Default => Some(quote::quote!(())),
        ReturnType::Type(_, ty) => {
            let text = quote::quote!(#ty).to_string();
            if text.contains("impl ") || text.contains("impl<") {
                None
            } else {
                Some(quote::quote!(#ty))
            }
        }
    }
}
