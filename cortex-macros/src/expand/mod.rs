//! Code generation: one file per attribute, and [`nest`], which puts the
//! layers of one function's stack together. This file holds what they
//! share.

pub(crate) mod counted;
mod fused;
pub(crate) mod health_check;
pub(crate) mod nest;
pub(crate) mod objective;
pub(crate) mod policy;
pub(crate) mod timed;
pub(crate) mod traced;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, LitStr};

use crate::stack::Kind;

/// One checked attribute of a function's stack.
pub(crate) enum Layer {
    Counted(counted::Counted),
    Timed(timed::Timed),
    /// `#[counted]` and `#[timed]` next to each other: one histogram with a
    /// lane per outcome records both.
    Fused(counted::Counted, timed::Timed),
    Traced(traced::Traced),
    Policy(Box<policy::Policy>),
    /// `#[objective]`: labels and rules for the counted and timed sites.
    Objective(objective::Objective),
}

impl Layer {
    pub(crate) fn parse(kind: Kind, args: TokenStream, span: Span) -> syn::Result<Layer> {
        Ok(match kind {
            Kind::Counted => Layer::Counted(counted::Counted::parse(args, span)?),
            Kind::Timed => Layer::Timed(timed::Timed::parse(args, span)?),
            Kind::Traced => Layer::Traced(traced::Traced::parse(args, span)?),
            Kind::CircuitBreaker
            | Kind::Retry
            | Kind::Bulkhead
            | Kind::Timeout
            | Kind::RateLimit => Layer::Policy(Box::new(policy::Policy::parse(kind, args, span)?)),
            Kind::Objective => Layer::Objective(objective::Objective::parse(args, span)?),
        })
    }

    /// Where `cortex` is for this layer.
    pub(crate) fn krate(&self) -> &TokenStream {
        match self {
            Layer::Counted(c) | Layer::Fused(c, _) => &c.krate,
            Layer::Timed(t) => &t.krate,
            Layer::Traced(t) => &t.krate,
            Layer::Policy(p) => &p.krate,
            Layer::Objective(o) => &o.krate,
        }
    }

    /// The attribute, for errors about its place in the stack.
    pub(crate) fn span(&self) -> Span {
        match self {
            Layer::Counted(c) | Layer::Fused(c, _) => c.span,
            Layer::Timed(t) => t.span,
            Layer::Traced(t) => t.span,
            Layer::Policy(p) => p.span,
            Layer::Objective(o) => o.span,
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Layer::Counted(_) | Layer::Fused(..) => Kind::Counted,
            Layer::Timed(_) => Kind::Timed,
            Layer::Traced(_) => Kind::Traced,
            Layer::Policy(p) => p.kind,
            Layer::Objective(_) => Kind::Objective,
        }
    }

    /// Whether the layer looks at the call's return value (only `#[timed]`
    /// does not: it times the call however it ends).
    pub(crate) fn sees_value(&self) -> bool {
        !matches!(self, Layer::Timed(_))
    }
}

/// Label names a user's `labels(...)` may not use.
pub(crate) fn reserved_labels() -> Vec<&'static str> {
    let mut reserved = cortex_rules::FUNCTION_LABELS.to_vec();
    reserved.extend(cortex_rules::RESERVED_LABELS);
    reserved
}

/// On a bad attribute: the user's item unchanged, plus the error, so only
/// that one error shows and the IDE still sees the function.
pub(crate) fn with_error(item: TokenStream, err: &syn::Error) -> TokenStream {
    let error = err.to_compile_error();
    quote!(#item #error)
}

/// A local name the user's code cannot see or clash with: mixed-site
/// hygiene, and a name no user writes (a `let` pattern would still find a
/// user's `static` of the same name).
pub(crate) fn hidden(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// `FnInfo::new(..)` for a site: what the metrics of one annotated function
/// are labelled with.
pub(crate) fn fn_info(
    krate: &TokenStream,
    metric: &str,
    help: &Option<LitStr>,
    function: &str,
    labels: &[(String, LitStr)],
    scope: &Ident,
    objective: Option<&Ident>,
) -> TokenStream {
    let help = help.as_ref().map(LitStr::value).unwrap_or_default();
    let label_pairs = labels.iter().map(|(k, v)| quote!((#k, #v)));
    let objective = objective.map(|o| quote!(.with_objective(&#o)));
    quote! {
        #krate::__private::FnInfo::new(
            #metric,
            #help,
            #function,
            ::core::module_path!(),
            &[#(#label_pairs),*],
            #scope,
        )#objective
    }
}

/// An entry in one of the runtime's link-time slices.
pub(crate) fn registration(
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
