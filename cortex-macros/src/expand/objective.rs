//! `#[objective]`: not a layer of its own. It names the objective of the
//! function's `#[counted]` and `#[timed]` sites, which put its labels on
//! their series; its rules are checked against theirs here.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Ident, LitStr};

use super::{hidden, Layer};
use crate::args::Args;

const KEYS: &[&str] = &[
    "name",
    "success_rate",
    "latency",
    "latency_percentile",
    "objective",
    "crate",
];

/// Where the objective is defined.
pub(crate) enum Def {
    /// In the attribute.
    Inline {
        name: LitStr,
        /// The rate and its tokens.
        success: Option<(f64, TokenStream)>,
        /// The threshold, its literal's span, and the percentile.
        latency: Option<(Duration, Span, f64)>,
    },
    /// `objective = CONST`: checked when the expansion evaluates it.
    Const(syn::Path),
}

/// The checked options of one `#[objective]`.
pub(crate) struct Objective {
    pub(crate) def: Def,
    pub(crate) krate: TokenStream,
    pub(crate) span: Span,
}

impl Objective {
    pub(crate) fn parse(attr: TokenStream, span: Span) -> syn::Result<Self> {
        let mut args = Args::parse(attr, "objective", KEYS)?;
        let krate = args.krate();
        let shared = args.take("objective");
        let def = match shared {
            Some(arg) => {
                for key in ["name", "success_rate", "latency", "latency_percentile"] {
                    if let Some(other) = args.take(key) {
                        args.error(syn::Error::new(
                            other.key.span(),
                            format!("`{key}` comes from the shared objective: with `objective = ...`, give no other option"),
                        ));
                    }
                }
                match &arg.value {
                    crate::args::Value::Expr(syn::Expr::Path(p)) if p.qself.is_none() => {
                        Def::Const(p.path.clone())
                    }
                    _ => {
                        return Err(syn::Error::new(
                            arg.key.span(),
                            "`objective` names a `const` made with `cortex::slo::Objective::new(..)`: `objective = CHECKOUT`",
                        ))
                    }
                }
            }
            None => Self::inline(&mut args, span),
        };
        args.finish()?;
        Ok(Objective { def, krate, span })
    }

    fn inline(args: &mut Args, span: Span) -> Def {
        let name = match args.string("name") {
            Some(lit) => {
                if let Err(rule) = cortex_rules::slo::check_objective_name(&lit.value()) {
                    args.error(syn::Error::new(lit.span(), rule));
                }
                lit
            }
            None => {
                args.error(syn::Error::new(
                    span,
                    "#[objective] needs `name = \"...\"` (or `objective = CONST` for a shared one)",
                ));
                LitStr::new("", span)
            }
        };
        let success = args.float("success_rate").and_then(|(rate, tokens)| {
            match cortex_rules::slo::check_percent(rate) {
                Ok(()) => Some((rate, tokens)),
                Err(rule) => {
                    args.error(syn::Error::new_spanned(
                        &tokens,
                        format!("`success_rate`: {rate} {rule}"),
                    ));
                    None
                }
            }
        });
        let threshold = args.duration("latency", false);
        let percentile_key = args.take("latency_percentile");
        let percentile = percentile_key.as_ref().and_then(|arg| {
            let value = match &arg.value {
                crate::args::Value::Expr(e) => crate::args::number(e).map(|v| (v, e)),
                _ => None,
            };
            match value {
                Some((p, e)) => match cortex_rules::slo::check_percent(p) {
                    Ok(()) => Some(p),
                    Err(rule) => {
                        args.error(syn::Error::new_spanned(
                            e,
                            format!("`latency_percentile`: {p} {rule}"),
                        ));
                        None
                    }
                },
                None => {
                    args.error(syn::Error::new(
                        arg.key.span(),
                        "`latency_percentile` expects a number, like `latency_percentile = 99`",
                    ));
                    None
                }
            }
        });
        let latency = match (threshold, &percentile_key) {
            (Some((d, s)), Some(_)) => percentile.map(|p| (d, s, p)),
            (Some((_, s)), None) => {
                args.error(syn::Error::new(
                    s,
                    "a latency objective also needs the share of calls that must be faster: add `latency_percentile = 99`",
                ));
                None
            }
            (None, Some(arg)) => {
                args.error(syn::Error::new(
                    arg.key.span(),
                    "`latency_percentile` needs a threshold: add `latency = \"250ms\"`",
                ));
                None
            }
            (None, None) => None,
        };
        if success.is_none() && latency.is_none() && !args.errors.any() {
            args.error(syn::Error::new(
                span,
                "an objective promises something: give `success_rate = 99.9`, `latency = \"250ms\", latency_percentile = 99`, or both",
            ));
        }
        Def::Inline {
            name,
            success,
            latency,
        }
    }

    /// Checks the objective against the function's other layers and
    /// returns the static that holds it, named `ident`.
    pub(crate) fn generate(
        &self,
        layers: &[Layer],
        function: &str,
        ident: &Ident,
    ) -> syn::Result<TokenStream> {
        let krate = &self.krate;
        let counted = layers
            .iter()
            .any(|l| matches!(l, Layer::Counted(_) | Layer::Fused(..)));
        let timed: Vec<&Vec<f64>> = layers
            .iter()
            .filter_map(|l| match l {
                Layer::Timed(t) | Layer::Fused(_, t) => Some(&t.buckets),
                _ => None,
            })
            .collect();
        if !counted && timed.is_empty() {
            return Err(syn::Error::new(
                self.span,
                "an objective is computed from the function's metrics: add `#[cortex::counted]` (success rate) or `#[cortex::timed]` (latency)",
            ));
        }
        let value = match &self.def {
            Def::Inline {
                name,
                success,
                latency,
            } => {
                if let (Some((_, tokens)), false) = (success, counted) {
                    return Err(syn::Error::new_spanned(
                        tokens,
                        "a success rate is computed from `#[counted]`'s series: add `#[cortex::counted]` to this function",
                    ));
                }
                let mut value = quote!(#krate::slo::Objective::new(#name));
                if let Some((rate, _)) = success {
                    value = quote!(#value.success_rate(#rate));
                }
                if let Some((threshold, span, percentile)) = latency {
                    if timed.is_empty() {
                        return Err(syn::Error::new(
                            *span,
                            "a latency objective is computed from `#[timed]`'s histogram: add `#[cortex::timed]` to this function",
                        ));
                    }
                    let nanos = threshold.as_nanos() as u64;
                    if let Some(buckets) = timed
                        .iter()
                        .find(|b| !cortex_rules::slo::latency_is_a_bound(nanos, b))
                    {
                        if buckets.is_empty() {
                            return Err(syn::Error::new(
                                *span,
                                format!(
                                    "`latency`: the function's `#[timed(native)]` keeps native buckets only, and the objective's rules read the classic bucket at the threshold: add `buckets = [..., {}, ...]` beside `native`",
                                    seconds(nanos)
                                ),
                            ));
                        }
                        return Err(syn::Error::new(
                            *span,
                            format!(
                                "`latency`: {} s is not one of the bucket bounds of `#[timed]` ({}), so the share of calls under it cannot be read from the histogram: use one of them, or add {} to `buckets = [...]`",
                                seconds(nanos),
                                list(buckets),
                                seconds(nanos),
                            ),
                        ));
                    }
                    value = quote!(#value.latency(::core::time::Duration::from_nanos(#nanos), #percentile));
                }
                value
            }
            Def::Const(path) => {
                let bounds = timed.iter().map(|b| quote!(&[#(#b),*]));
                let no_counted = format!("the objective has a success rate, computed from `#[counted]`'s series: add `#[cortex::counted]` to `{function}`");
                let no_timed = format!("the objective has a latency, computed from `#[timed]`'s histogram: add `#[cortex::timed]` to `{function}`");
                let not_a_bound = format!(
                    "the objective's latency threshold is not one of the bucket bounds of `{function}`'s `#[timed]` ({}), so the share of calls under it cannot be read from the histogram",
                    timed.first().map_or(String::new(), |b| list(b))
                );
                let span = syn::spanned::Spanned::span(path);
                let check = quote_spanned! {span=>
                    const _: () = #path.__check(
                        #counted,
                        &[#(#bounds),*],
                        #no_counted,
                        #no_timed,
                        #not_a_bound,
                    );
                };
                quote!({ #check #path })
            }
        };
        Ok(quote! {
            static #ident: #krate::slo::Objective = #value;
        })
    }
}

/// The static an objective is kept in.
pub(crate) fn static_name() -> Ident {
    hidden("__CORTEX_OBJECTIVE")
}

fn seconds(nanos: u64) -> String {
    let s = nanos as f64 / 1e9;
    format!("{s}")
}

fn list(bounds: &[f64]) -> String {
    bounds
        .iter()
        .map(|b| format!("{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}
