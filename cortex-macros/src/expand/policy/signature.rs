//! The arguments of a function whose retry or fallback uses them again:
//! each attempt gets its own copy of every by-value argument, and a
//! fallback is called with copies saved before the call.
//!
//! Arguments written as patterns (`(a, b): (u8, u8)`, `Json(x): Json<T>`)
//! get a hidden name in the signature, the way `#[async_trait]` does it, and
//! are destructured again at the top of the body, once per attempt. `mut`
//! on a retried argument moves to the per-attempt copy; `#[cfg]` on an
//! argument is carried to every statement that names it.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Block, FnArg, Ident, Pat, Signature, Type};

use crate::expand::hidden;
use crate::item::Body;

/// One typed argument.
pub(crate) struct Param {
    /// Its name in the signature (hidden, for a pattern).
    pub(crate) ident: Ident,
    /// The pattern it was written as, destructured in the body.
    pattern: Option<Pat>,
    /// Not a reference: each attempt clones it.
    by_value: bool,
    /// Written `mut name`: the per-attempt copy is `mut`.
    mutable: bool,
    /// Its `#[cfg(..)]` attributes.
    pub(crate) cfg: Vec<Attribute>,
    /// The whole argument, for errors about its type.
    span: Span,
}

/// The typed arguments (empty when nothing uses them again).
#[derive(Default)]
pub(crate) struct Params {
    pub(crate) list: Vec<Param>,
}

/// Checks the arguments and rewrites the signature where needed.
pub(crate) fn analyse(
    sig: &mut Signature,
    body: Body,
    retry: bool,
    fallback: bool,
) -> syn::Result<Params> {
    if !retry && !fallback {
        return Ok(Params::default());
    }
    let what = match (retry, fallback) {
        (true, true) => "#[retry] and `fallback` use the arguments again",
        (true, false) => "#[retry] uses the arguments again (once per attempt)",
        _ => "`fallback` uses the arguments again",
    };
    let mut list = Vec::new();
    for (index, input) in sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                // A fallback is called without the receiver; a retry needs
                // it for every attempt, so it must be a shared reference.
                let shared = match &*r.ty {
                    Type::Reference(t) => t.mutability.is_none(),
                    _ => false,
                };
                if retry && !shared {
                    return Err(syn::Error::new_spanned(
                        &*r,
                        format!("{what}, so the receiver must be `&self`"),
                    ));
                }
            }
            FnArg::Typed(pt) => {
                if let Type::Reference(r) = &*pt.ty {
                    if r.mutability.is_some() {
                        return Err(syn::Error::new_spanned(
                            &pt.ty,
                            format!("{what}; a `&mut` argument cannot be handed out twice"),
                        ));
                    }
                }
                let cfg: Vec<Attribute> = pt
                    .attrs
                    .iter()
                    .filter(|a| a.path().is_ident("cfg"))
                    .cloned()
                    .collect();
                let by_value = !matches!(&*pt.ty, Type::Reference(_));
                let span = pt.span();
                match &mut *pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        let mutable = pi.mutability.is_some();
                        if retry {
                            // The copies are `mut`; the argument itself is
                            // only cloned.
                            pi.mutability = None;
                        }
                        list.push(Param {
                            ident: pi.ident.clone(),
                            pattern: None,
                            by_value,
                            mutable,
                            cfg,
                            span,
                        });
                    }
                    pat => {
                        if let Body::Future { .. } = body {
                            return Err(syn::Error::new_spanned(
                                &*pat,
                                format!("{what}: give this argument a plain name"),
                            ));
                        }
                        let ident = hidden(&format!("__cortex_arg{index}"));
                        let pattern = std::mem::replace(
                            pat,
                            Pat::Ident(syn::PatIdent {
                                attrs: Vec::new(),
                                by_ref: None,
                                mutability: None,
                                ident: ident.clone(),
                                subpat: None,
                            }),
                        );
                        list.push(Param {
                            ident,
                            pattern: Some(pattern),
                            by_value,
                            mutable: false,
                            cfg,
                            span,
                        });
                    }
                }
            }
        }
    }
    Ok(Params { list })
}

impl Params {
    /// The user's block, with renamed patterns destructured first.
    pub(crate) fn destructure(&self, block: Block) -> Block {
        let lets: Vec<TokenStream> = self
            .list
            .iter()
            .filter_map(|p| {
                let pat = p.pattern.as_ref()?;
                let (cfg, ident) = (&p.cfg, &p.ident);
                Some(quote!(#(#cfg)* let #pat = #ident;))
            })
            .collect();
        if lets.is_empty() {
            return block;
        }
        syn::parse_quote!({ #(#lets)* #block })
    }

    /// The patterns, bound by reference (for `#[traced]` attribute
    /// expressions outside the body).
    pub(crate) fn borrowed_patterns(&self) -> TokenStream {
        let lets = self.list.iter().filter_map(|p| {
            let mut pat = p.pattern.clone()?;
            StripMut.visit_pat_mut(&mut pat);
            let (cfg, ident) = (&p.cfg, &p.ident);
            Some(quote!(#(#cfg)* #[allow(unused_variables)] let #pat = &#ident;))
        });
        quote!(#(#lets)*)
    }

    /// At the top of each attempt: a fresh copy of each by-value argument.
    pub(crate) fn attempt_copies(&self, krate: &TokenStream) -> TokenStream {
        let lets = self.list.iter().filter(|p| p.by_value).map(|p| {
            let (cfg, ident) = (&p.cfg, &p.ident);
            let mutability = p.mutable.then(|| quote!(mut));
            let clone =
                quote_spanned!(p.span=> #krate::__private::policy::clone_for_retry(&#ident));
            quote!(#(#cfg)* #[allow(unused_mut)] let #mutability #ident = #clone;)
        });
        quote!(#(#lets)*)
    }

    /// Copies of every argument taken before the call (`save`), put back
    /// under their names for the fallback (`restore`).
    pub(crate) fn saved(&self, krate: &TokenStream, index: usize) -> (TokenStream, TokenStream) {
        let mut save = TokenStream::new();
        let mut restore = TokenStream::new();
        for (i, p) in self.list.iter().enumerate() {
            let saved = hidden(&format!("__cortex_saved_{index}_{i}"));
            let (cfg, ident) = (&p.cfg, &p.ident);
            let clone =
                quote_spanned!(p.span=> #krate::__private::policy::clone_for_retry(&#ident));
            save.extend(quote!(#(#cfg)* let #saved = #clone;));
            restore.extend(quote!(#(#cfg)* let #ident = #saved;));
        }
        (save, restore)
    }
}

/// `mut x` -> `x` and `ref mut x` -> `ref x`, for binding by reference.
struct StripMut;

impl VisitMut for StripMut {
    fn visit_pat_ident_mut(&mut self, pi: &mut syn::PatIdent) {
        pi.mutability = None;
        syn::visit_mut::visit_pat_ident_mut(self, pi);
    }
}
