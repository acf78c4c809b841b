//! The resilience attributes: `#[circuit_breaker]`, `#[retry]`,
//! `#[bulkhead]`, `#[timeout]` and `#[rate_limit]`.
//!
//! The first policy attribute on a function expands every policy attribute
//! below it too, so they nest in source order (the top one is outermost).

use std::collections::HashMap;
use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, LitStr, Pat, ReturnType, Type};

use super::{hidden, registration_in, with_error};
use crate::args::{Args, Value};
use crate::item;
use cortex_rules::resilience::{
    Backoff, BulkheadConfig, CircuitBreakerConfig, ConfigError, OpenHealth, RateLimiterConfig,
    RetryConfig, Window,
};

/// Which policy an attribute is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    CircuitBreaker,
    Retry,
    Bulkhead,
    Timeout,
    RateLimit,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::CircuitBreaker => "circuit_breaker",
            Kind::Retry => "retry",
            Kind::Bulkhead => "bulkhead",
            Kind::Timeout => "timeout",
            Kind::RateLimit => "rate_limit",
        }
    }

    fn from_attr(name: &str) -> Option<Kind> {
        Some(match name {
            "circuit_breaker" => Kind::CircuitBreaker,
            "retry" => Kind::Retry,
            "bulkhead" => Kind::Bulkhead,
            "timeout" => Kind::Timeout,
            "rate_limit" => Kind::RateLimit,
            _ => return None,
        })
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::CircuitBreaker => &[
                "name",
                "failure_rate",
                "slow_call_rate",
                "slow_call_threshold",
                "minimum_calls",
                "window",
                "open_for",
                "half_open_calls",
                "health",
                "record_if",
                "fallback",
                "crate",
            ],
            Kind::Retry => &[
                "name",
                "max",
                "delay",
                "multiplier",
                "max_delay",
                "jitter",
                "budget",
                "retry_if",
                "fallback",
                "crate",
            ],
            Kind::Bulkhead => &["name", "max_concurrent", "max_wait", "fallback", "crate"],
            Kind::Timeout => &["after", "name", "fallback", "crate"],
            Kind::RateLimit => &["name", "permits", "period", "max_wait", "fallback", "crate"],
        }
    }
}

/// One parsed, validated policy attribute.
struct Policy {
    kind: Kind,
    name: Option<String>,
    /// Builds the instance: `(name, registry) -> instance`.
    make: TokenStream,
    fallback: Option<syn::Path>,
    predicate: Option<syn::Path>,
    krate: TokenStream,
    span: Span,
}

/// Key spans, to point a rule's error at the value that broke it.
struct Spans {
    map: HashMap<&'static str, Span>,
    default: Span,
}

impl Spans {
    fn error(&self, err: ConfigError, related: &[(&str, &str)]) -> syn::Error {
        let span = self
            .map
            .get(err.key)
            .copied()
            .or_else(|| {
                related
                    .iter()
                    .find(|(k, _)| *k == err.key)
                    .and_then(|(_, other)| self.map.get(other).copied())
            })
            .unwrap_or(self.default);
        syn::Error::new(span, err.to_string())
    }
}

fn int_value(arg: &crate::args::Arg, key: &str) -> syn::Result<(u64, Span)> {
    match &arg.value {
        Value::Expr(Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        })) => Ok((i.base10_parse::<u64>()?, i.span())),
        Value::Expr(e) => Err(syn::Error::new_spanned(
            e,
            format!("`{key}` expects a whole number"),
        )),
        _ => Err(syn::Error::new(
            arg.key.span(),
            format!("`{key}` expects a value: `{key} = 10`"),
        )),
    }
}

fn float_value(arg: &crate::args::Arg, key: &str) -> syn::Result<(f64, Span)> {
    match &arg.value {
        Value::Expr(Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        })) => Ok((f.base10_parse::<f64>()?, f.span())),
        Value::Expr(Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        })) => Ok((i.base10_parse::<f64>()?, i.span())),
        Value::Expr(e) => Err(syn::Error::new_spanned(
            e,
            format!("`{key}` expects a number"),
        )),
        _ => Err(syn::Error::new(
            arg.key.span(),
            format!("`{key}` expects a value: `{key} = 0.5`"),
        )),
    }
}

fn duration_lit(lit: &LitStr) -> syn::Result<Duration> {
    cortex_rules::parse_duration(&lit.value())
        .map(Duration::from_nanos)
        .map_err(|e| syn::Error::new(lit.span(), e.to_string()))
}

fn duration_value(arg: &crate::args::Arg, key: &str) -> syn::Result<(Duration, Span)> {
    match &arg.value {
        Value::Expr(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => {
            // `max_wait = "0ms"` is allowed: zero means "do not wait".
            let text = s.value();
            let unit = text.trim().trim_start_matches('0');
            let all_zero = text.trim().starts_with('0') && unit.chars().all(char::is_alphabetic);
            if key == "max_wait"
                && all_zero
                && cortex_rules::parse_duration(&format!("1{unit}")).is_ok()
            {
                return Ok((Duration::ZERO, s.span()));
            }
            Ok((duration_lit(s)?, s.span()))
        }
        Value::Expr(e) => Err(syn::Error::new_spanned(
            e,
            format!("`{key}` expects a duration string, like `{key} = \"250ms\"`"),
        )),
        _ => Err(syn::Error::new(
            arg.key.span(),
            format!("`{key}` expects a value: `{key} = \"1s\"`"),
        )),
    }
}

fn path_value(arg: &crate::args::Arg, key: &str) -> syn::Result<syn::Path> {
    match &arg.value {
        Value::Expr(Expr::Path(p)) if p.qself.is_none() => Ok(p.path.clone()),
        Value::Expr(e) => Err(syn::Error::new_spanned(
            e,
            format!("`{key}` expects a function path, like `{key} = my_fn`"),
        )),
        _ => Err(syn::Error::new(
            arg.key.span(),
            format!("`{key}` expects a function path, like `{key} = my_fn`"),
        )),
    }
}

fn string_value(arg: &crate::args::Arg, key: &str) -> syn::Result<LitStr> {
    match &arg.value {
        Value::Expr(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => Ok(s.clone()),
        Value::Expr(e) => Err(syn::Error::new_spanned(
            e,
            format!("`{key}` expects a string literal"),
        )),
        _ => Err(syn::Error::new(
            arg.key.span(),
            format!("`{key}` expects a value: `{key} = \"...\"`"),
        )),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn dur_tokens(d: Duration) -> TokenStream {
    let n = nanos(d);
    quote!(::core::time::Duration::from_nanos(#n))
}

fn parse_policy(kind: Kind, attr: TokenStream, attr_span: Span) -> syn::Result<Policy> {
    let mut attr = attr;
    let mut positional: Option<LitStr> = None;
    if kind == Kind::Timeout {
        // `#[timeout("2s")]`: a leading string is the duration.
        let mut iter = attr.clone().into_iter();
        if let Some(first) = iter.next() {
            if let Ok(lit) = syn::parse2::<LitStr>(first.into_token_stream()) {
                positional = Some(lit);
                let rest: TokenStream = iter.collect();
                let mut rest_iter = rest.clone().into_iter();
                attr = match rest_iter.next() {
                    Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ',' => {
                        rest_iter.collect()
                    }
                    None => TokenStream::new(),
                    Some(other) => {
                        return Err(syn::Error::new(
                            other.span(),
                            "expected `,` after the duration",
                        ))
                    }
                };
            }
        }
    }
    let mut args = Args::parse(attr, kind.attr(), kind.keys())?;
    let mut spans = Spans {
        map: HashMap::new(),
        default: attr_span,
    };
    let name = match args.take("name") {
        Some(a) => {
            let s = string_value(&a, "name")?;
            if s.value().trim().is_empty() {
                return Err(syn::Error::new(s.span(), "a policy name must not be empty"));
            }
            Some(s.value())
        }
        None => None,
    };
    let fallback = args
        .take("fallback")
        .map(|a| path_value(&a, "fallback"))
        .transpose()?;
    let krate = args.krate()?;
    let mut predicate = None;
    let make = match kind {
        Kind::CircuitBreaker => {
            let mut c = CircuitBreakerConfig::default();
            for key in kind.keys() {
                let Some(arg) = args.take(key) else { continue };
                match *key {
                    "failure_rate" | "slow_call_rate" | "minimum_calls" | "half_open_calls" => {
                        let (v, span) = int_value(&arg, key)?;
                        spans.map.insert(key, span);
                        let too_big = |max: u64| {
                            syn::Error::new(
                                span,
                                format!("`{key}`: {v} is too large (at most {max})"),
                            )
                        };
                        match *key {
                            "failure_rate" => {
                                c.failure_rate = u8::try_from(v).map_err(|_| too_big(100))?
                            }
                            "slow_call_rate" => {
                                c.slow_call_rate = u8::try_from(v).map_err(|_| too_big(100))?
                            }
                            "minimum_calls" => {
                                c.minimum_calls =
                                    u32::try_from(v).map_err(|_| too_big(u64::from(u32::MAX)))?
                            }
                            _ => {
                                c.half_open_calls =
                                    u32::try_from(v).map_err(|_| too_big(u64::from(u32::MAX)))?
                            }
                        }
                    }
                    "slow_call_threshold" => {
                        let (d, span) = duration_value(&arg, key)?;
                        spans.map.insert(key, span);
                        c.slow_call_threshold = Some(d);
                    }
                    "open_for" => {
                        let (d, span) = duration_value(&arg, key)?;
                        spans.map.insert(key, span);
                        c.open_for = d;
                    }
                    "window" => {
                        match &arg.value {
                            Value::Expr(Expr::Lit(ExprLit { lit: Lit::Int(i), .. })) => {
                                spans.map.insert(key, i.span());
                                c.window = Window::Count(i.base10_parse::<u32>()?);
                            }
                            Value::Expr(Expr::Lit(ExprLit { lit: Lit::Str(s), .. })) => {
                                spans.map.insert(key, s.span());
                                c.window = Window::Time(duration_lit(s)?);
                            }
                            Value::Expr(e) => {
                                return Err(syn::Error::new_spanned(
                                    e,
                                    "`window` is a number of calls (`window = 100`) or a duration (`window = \"60s\"`)",
                                ))
                            }
                            _ => return Err(syn::Error::new(arg.key.span(), "`window` expects a value: `window = 100`")),
                        }
                    }
                    "health" => {
                        let s = string_value(&arg, key)?;
                        c.health = match s.value().as_str() {
                            "degraded" => OpenHealth::Degraded,
                            "down" => OpenHealth::Down,
                            other => {
                                return Err(syn::Error::new(
                                    s.span(),
                                    format!("unknown health \"{other}\"; an open breaker reports \"degraded\" or \"down\""),
                                ))
                            }
                        };
                    }
                    "record_if" => predicate = Some(path_value(&arg, key)?),
                    _ => {}
                }
            }
            c.validate()
                .map_err(|e| spans.error(e, &[("minimum_calls", "window")]))?;
            let window = match c.window {
                Window::Count(n) => quote!(#krate::resilience::Window::Count(#n)),
                Window::Time(d) => {
                    let d = dur_tokens(d);
                    quote!(#krate::resilience::Window::Time(#d))
                }
            };
            let (fr, sr, mc, hc) = (
                c.failure_rate,
                c.slow_call_rate,
                c.minimum_calls,
                c.half_open_calls,
            );
            let threshold = match c.slow_call_threshold {
                Some(d) => {
                    let d = dur_tokens(d);
                    quote!(::core::option::Option::Some(#d))
                }
                None => quote!(::core::option::Option::None),
            };
            let open_for = dur_tokens(c.open_for);
            let health = match c.health {
                OpenHealth::Degraded => quote!(#krate::resilience::OpenHealth::Degraded),
                OpenHealth::Down => quote!(#krate::resilience::OpenHealth::Down),
            };
            quote! {
                #krate::__private::policy::breaker(NAME, #krate::resilience::CircuitBreakerConfig {
                    failure_rate: #fr,
                    slow_call_rate: #sr,
                    slow_call_threshold: #threshold,
                    minimum_calls: #mc,
                    window: #window,
                    open_for: #open_for,
                    half_open_calls: #hc,
                    health: #health,
                }, REGISTRY)
            }
        }
        Kind::Retry => {
            let mut c = RetryConfig::default();
            let mut multiplier: Option<f64> = None;
            let mut max_delay: Option<Duration> = None;
            for key in kind.keys() {
                let Some(arg) = args.take(key) else { continue };
                match *key {
                    "max" => {
                        let (v, span) = int_value(&arg, key)?;
                        spans.map.insert(key, span);
                        c.max = u32::try_from(v)
                            .map_err(|_| syn::Error::new(span, "`max` is too large"))?;
                    }
                    "delay" => {
                        let (d, span) = duration_value(&arg, key)?;
                        spans.map.insert(key, span);
                        c.delay = d;
                    }
                    "max_delay" => {
                        let (d, span) = duration_value(&arg, key)?;
                        spans.map.insert(key, span);
                        max_delay = Some(d);
                    }
                    "multiplier" | "jitter" | "budget" => {
                        let (v, span) = float_value(&arg, key)?;
                        spans.map.insert(key, span);
                        match *key {
                            "multiplier" => multiplier = Some(v),
                            "jitter" => c.jitter = v,
                            _ => c.budget = Some(v),
                        }
                    }
                    "retry_if" => predicate = Some(path_value(&arg, key)?),
                    _ => {}
                }
            }
            if multiplier.is_some() || max_delay.is_some() {
                c.backoff = Backoff::Exponential {
                    multiplier: multiplier.unwrap_or(2.0),
                    max_delay: max_delay.unwrap_or(Duration::from_secs(3600)),
                };
            }
            c.validate()
                .map_err(|e| spans.error(e, &[("max_delay", "delay")]))?;
            let delay = dur_tokens(c.delay);
            let backoff = match c.backoff {
                Backoff::Fixed => quote!(#krate::resilience::Backoff::Fixed),
                Backoff::Exponential {
                    multiplier,
                    max_delay,
                } => {
                    let md = dur_tokens(max_delay);
                    quote!(#krate::resilience::Backoff::Exponential { multiplier: #multiplier, max_delay: #md })
                }
            };
            let (max, jitter) = (c.max, c.jitter);
            let budget = match c.budget {
                Some(b) => quote!(::core::option::Option::Some(#b)),
                None => quote!(::core::option::Option::None),
            };
            quote! {
                #krate::__private::policy::retry(NAME, #krate::resilience::RetryConfig {
                    max: #max,
                    delay: #delay,
                    backoff: #backoff,
                    jitter: #jitter,
                    budget: #budget,
                }, REGISTRY)
            }
        }
        Kind::Bulkhead => {
            let mut c = BulkheadConfig::default();
            if let Some(arg) = args.take("max_concurrent") {
                let (v, span) = int_value(&arg, "max_concurrent")?;
                spans.map.insert("max_concurrent", span);
                c.max_concurrent = u32::try_from(v)
                    .map_err(|_| syn::Error::new(span, "`max_concurrent` is too large"))?;
            }
            if let Some(arg) = args.take("max_wait") {
                c.max_wait = duration_value(&arg, "max_wait")?.0;
            }
            c.validate().map_err(|e| spans.error(e, &[]))?;
            let m = c.max_concurrent;
            let w = dur_tokens(c.max_wait);
            quote! {
                #krate::__private::policy::bulkhead(NAME, #krate::resilience::BulkheadConfig {
                    max_concurrent: #m,
                    max_wait: #w,
                }, REGISTRY)
            }
        }
        Kind::Timeout => {
            let lit = match (positional, args.take("after")) {
                (Some(lit), None) => lit,
                (None, Some(arg)) => string_value(&arg, "after")?,
                (Some(_), Some(arg)) => {
                    return Err(syn::Error::new(
                        arg.key.span(),
                        "the duration is given twice",
                    ))
                }
                (None, None) => {
                    return Err(syn::Error::new(
                        attr_span,
                        "#[timeout] needs a duration: `#[timeout(\"2s\")]`",
                    ))
                }
            };
            let n = nanos(duration_lit(&lit)?);
            quote!(#krate::__private::policy::timeout(NAME, #n, REGISTRY))
        }
        Kind::RateLimit => {
            let mut c = RateLimiterConfig::default();
            if let Some(arg) = args.take("permits") {
                let (v, span) = int_value(&arg, "permits")?;
                spans.map.insert("permits", span);
                c.permits = u32::try_from(v)
                    .map_err(|_| syn::Error::new(span, "`permits` is too large"))?;
            }
            if let Some(arg) = args.take("period") {
                let (d, span) = duration_value(&arg, "period")?;
                spans.map.insert("period", span);
                c.period = d;
            }
            if let Some(arg) = args.take("max_wait") {
                c.max_wait = duration_value(&arg, "max_wait")?.0;
            }
            c.validate().map_err(|e| spans.error(e, &[]))?;
            let p = c.permits;
            let period = dur_tokens(c.period);
            let w = dur_tokens(c.max_wait);
            quote! {
                #krate::__private::policy::rate_limiter(NAME, #krate::resilience::RateLimiterConfig {
                    permits: #p,
                    period: #period,
                    max_wait: #w,
                }, REGISTRY)
            }
        }
    };
    Ok(Policy {
        kind,
        name,
        make,
        fallback,
        predicate,
        krate,
        span: attr_span,
    })
}

/// Removes every cortex policy attribute from the item, in order, returning
/// their kinds and arguments.
fn take_policy_attrs(item: &mut ItemFn) -> Vec<(Kind, TokenStream, Span)> {
    let mut out = Vec::new();
    item.attrs.retain(|attr| {
        let path = attr.path();
        let n = path.segments.len();
        let last = path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let ours = n == 2 && path.segments[0].ident == "cortex";
        match (ours, Kind::from_attr(&last)) {
            (true, Some(kind)) => {
                let tokens = match &attr.meta {
                    syn::Meta::List(list) => list.tokens.clone(),
                    _ => TokenStream::new(),
                };
                out.push((kind, tokens, attr.span()));
                false
            }
            _ => true,
        }
    });
    out
}

pub(crate) fn expand(kind: Kind, attr: TokenStream, tokens: TokenStream) -> TokenStream {
    match try_expand(kind, attr, tokens.clone()) {
        Ok(out) => out,
        Err(err) => with_error(tokens, &err),
    }
}

struct Arg {
    ident: syn::Ident,
    ty: Type,
    by_value: bool,
}

fn try_expand(kind: Kind, attr: TokenStream, tokens: TokenStream) -> syn::Result<TokenStream> {
    let mut item = item::parse(tokens, kind.attr())?;
    let mut policies = vec![parse_policy(kind, attr, Span::call_site())?];
    for (k, t, span) in take_policy_attrs(&mut item) {
        policies.push(parse_policy(k, t, span)?);
    }
    let is_async = item.sig.asyncness.is_some();
    for p in &policies {
        if !is_async && matches!(p.kind, Kind::Timeout | Kind::RateLimit) {
            let what = if p.kind == Kind::Timeout {
                "#[timeout] needs an async fn: a running sync call cannot be stopped"
            } else {
                "#[rate_limit] needs an async fn (it waits for permits asynchronously)"
            };
            return Err(syn::Error::new_spanned(item.sig.fn_token, what));
        }
    }
    if !has_fallback_in(&policies) && clearly_not_result(&item.sig.output) {
        let message = "a function under a resilience policy returns `Result<T, E>` with `E: From<cortex::resilience::Error>` (so a rejection can be returned), or names a `fallback`";
        return Err(match &item.sig.output {
            ReturnType::Type(_, ty) => syn::Error::new_spanned(ty, message),
            ReturnType::Default => syn::Error::new_spanned(&item.sig.ident, message),
        });
    }
    let args = collect_args(
        &item,
        policies
            .iter()
            .any(|p| p.kind == Kind::Retry || p.fallback.is_some()),
    )?;
    let fn_name = item::function_name(&item);
    let output = match &item.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let has_fallback = policies.iter().any(|p| p.fallback.is_some());
    let result_mode = returns_result(&item.sig.output);

    // Innermost first: the last attribute wraps the body.
    // Wrapped mode: a fallback on a function that does not return a
    // `Result`. Inside the policies the value travels as
    // `Ok::<R, resilience::Error>`, so the only errors are rejections, and the
    // outermost policy's fallback turns a rejection back into an `R`.
    let wrapped = has_fallback && !result_mode;
    if wrapped && policies[0].fallback.is_none() {
        return Err(syn::Error::new(
            policies[0].span,
            "this function does not return a `Result`, so a rejection can only be answered by a fallback on the outermost policy attribute: add `fallback = ...` here",
        ));
    }
    let krate0 = policies[0].krate.clone();
    let carried = if wrapped {
        quote!(::core::result::Result<#output, #krate0::resilience::Error>)
    } else {
        output.clone()
    };
    let mut body = {
        let block = &item.block;
        if wrapped {
            if is_async {
                quote!({ ::core::result::Result::Ok(#krate0::__private::typed_future::<#output, _>(async move #block).await) })
            } else {
                quote!({ ::core::result::Result::Ok(#krate0::__private::call_once::<#output, _>(move || #block)) })
            }
        } else {
            quote!(#block)
        }
    };
    let mut statics = TokenStream::new();
    for (i, p) in policies.iter().enumerate().rev() {
        let krate = &p.krate;
        let site = hidden(&format!("__CORTEX_POLICY_{i}"));
        let entry = hidden(&format!("__CORTEX_POLICY_ENTRY_{i}"));
        let name = match &p.name {
            Some(n) => quote!(#n),
            None => quote!(::core::concat!(::core::module_path!(), "::", #fn_name)),
        };
        let make = &p.make;
        let ty = match p.kind {
            Kind::CircuitBreaker => quote!(#krate::resilience::CircuitBreaker),
            Kind::Retry => quote!(#krate::resilience::Retry),
            Kind::Bulkhead => quote!(#krate::resilience::Bulkhead),
            Kind::Timeout => quote!(#krate::resilience::Timeout),
            Kind::RateLimit => quote!(#krate::resilience::RateLimiter),
        };
        let registration = registration_in(
            krate,
            quote!(#krate::__private::policy::POLICY_SITES),
            &entry,
            quote!(#krate::__private::policy::PolicySite),
            quote!(#krate::__private::policy::PolicySite { init: {
                fn init(registry: &#krate::metrics::Registry) {
                    const NAME: &str = #name;
                    const _: () = ();
                    let REGISTRY = ::core::option::Option::Some(registry);
                    let _ = #make;
                }
                init
            } }),
        );
        statics.extend(quote! {
            #[allow(non_snake_case)]
            static #site: ::std::sync::LazyLock<#ty> = ::std::sync::LazyLock::new(|| {
                const NAME: &str = #name;
                #[allow(non_snake_case)]
                let REGISTRY: ::core::option::Option<&#krate::metrics::Registry> = ::core::option::Option::None;
                #make
            });
            #registration
        });
        let pred = match &p.predicate {
            Some(path) => quote!(|e| #path(e)),
            None => quote!(|_| true),
        };
        let clones = if p.kind == Kind::Retry {
            clone_args(&args, krate)
        } else {
            TokenStream::new()
        };
        // In "wrapped" mode (a fallback on a non-Result fn) the body's value
        // is carried as Ok, and policy rejections are the only errors.
        let inner = body.clone();
        // The function's return type is given to every inner block, so `?`
        // and `.into()` in the body infer as they would in the function.
        let fut = quote!(#krate::__private::typed_future::<#carried, _>(async move #inner));
        let run = quote!(#krate::__private::call_once::<#carried, _>(move || #inner));
        body = match (p.kind, is_async) {
            (Kind::CircuitBreaker, true) => quote!(#site.call_with(move || #fut, #pred).await),
            (Kind::CircuitBreaker, false) => quote!(#site.call_sync(move || #run, #pred)),
            (Kind::Retry, true) => quote!(#site.call_if(|| { #clones #fut }, #pred).await),
            (Kind::Retry, false) => quote!(#site.call_sync_if(|| { #clones #run }, #pred)),
            (Kind::Bulkhead, true) => quote!(#site.call(move || #fut).await),
            (Kind::Bulkhead, false) => quote!(#site.call_sync(move || #run)),
            (Kind::Timeout, _) => quote!(#site.call(#fut).await),
            (Kind::RateLimit, _) => quote!(#site.call(move || #fut).await),
        };
        body = quote!({ let __cortex_policy_result: #carried = #body; __cortex_policy_result });
        if let Some(fallback) = &p.fallback {
            let call_args: Vec<_> = args
                .iter()
                .map(|a| {
                    let id = &a.ident;
                    quote!(#id)
                })
                .collect();
            let saved: Vec<_> = args
                .iter()
                .map(|a| {
                    let id = &a.ident;
                    let saved = hidden(&format!("__cortex_saved_{id}"));
                    (id.clone(), saved)
                })
                .collect();
            let save = saved
                .iter()
                .map(|(id, s)| quote!(let #s = #krate::__private::policy::clone_for_retry(&#id);));
            let restore = saved.iter().map(|(id, s)| quote!(let #id = #s;));
            let call = quote_spanned!(fallback.span()=> #fallback(#(#call_args),*));
            let call = if is_async { quote!(#call.await) } else { call };
            body = if result_mode {
                quote!({
                    #(#save)*
                    match #body {
                        ::core::result::Result::Ok(v) => ::core::result::Result::Ok(v),
                        ::core::result::Result::Err(_) => { #(#restore)* #call }
                    }
                })
            } else if i == 0 {
                quote!({
                    #(#save)*
                    match #body {
                        ::core::result::Result::Ok(v) => v,
                        ::core::result::Result::Err(_) => { #(#restore)* #call }
                    }
                })
            } else {
                quote!({
                    #(#save)*
                    ::core::result::Result::Ok(match #body {
                        ::core::result::Result::Ok(v) => v,
                        ::core::result::Result::Err(_) => { #(#restore)* #call }
                    })
                })
            };
        }
    }
    if !has_fallback {
        let span = match &item.sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => item.sig.ident.span(),
        };
        let krate = &policies[0].krate;
        let check =
            quote_spanned!(span=> #krate::__private::policy::assert_policy_result::<#output>());
        statics.extend(quote!(const _: fn() = || { #check; };));
    }
    let block = quote!({
        #statics
        #body
    });
    item.block = syn::parse2(block)?;
    Ok(quote!(#item))
}

fn has_fallback_in(policies: &[Policy]) -> bool {
    policies.iter().any(|p| p.fallback.is_some())
}

/// Return types that can never be a `Result` (an alias would be a path).
fn clearly_not_result(output: &ReturnType) -> bool {
    const PLAIN: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64", "bool", "char", "str", "String", "Vec", "Option", "Box",
    ];
    match output {
        ReturnType::Default => true,
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(_)
            | Type::Reference(_)
            | Type::Array(_)
            | Type::Slice(_)
            | Type::Never(_) => true,
            Type::Path(p) => {
                p.qself.is_none()
                    && p.path.segments.len() == 1
                    && PLAIN.contains(&p.path.segments[0].ident.to_string().as_str())
            }
            _ => false,
        },
    }
}

fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn collect_args(item: &ItemFn, must_be_named: bool) -> syn::Result<Vec<Arg>> {
    let mut out = Vec::new();
    for input in &item.sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                if must_be_named && (r.mutability.is_some() || r.reference.is_none()) {
                    return Err(syn::Error::new_spanned(
                        r,
                        "#[retry] and `fallback` re-use the arguments, so the receiver must be `&self`",
                    ));
                }
            }
            FnArg::Typed(pt) => {
                let Pat::Ident(pi) = &*pt.pat else {
                    if must_be_named {
                        return Err(syn::Error::new_spanned(
                            &pt.pat,
                            "#[retry] and `fallback` re-use the arguments: give this argument a plain name",
                        ));
                    }
                    continue;
                };
                if must_be_named {
                    if let Type::Reference(r) = &*pt.ty {
                        if r.mutability.is_some() {
                            return Err(syn::Error::new_spanned(
                                &pt.ty,
                                "#[retry] and `fallback` re-use the arguments; a `&mut` argument cannot be handed out twice",
                            ));
                        }
                    }
                }
                let by_value = !matches!(&*pt.ty, Type::Reference(_));
                out.push(Arg {
                    ident: pi.ident.clone(),
                    ty: (*pt.ty).clone(),
                    by_value,
                });
            }
        }
    }
    Ok(out)
}

/// Inside a retry's closure: a fresh copy of each argument per attempt.
fn clone_args(args: &[Arg], krate: &TokenStream) -> TokenStream {
    let mut out = TokenStream::new();
    for a in args {
        let id = &a.ident;
        if a.by_value {
            let ty = &a.ty;
            out.extend(quote_spanned!(ty.span()=> let #id = #krate::__private::policy::clone_for_retry(&#id);));
        } else {
            out.extend(quote!(let #id = #id;));
        }
    }
    out
}
