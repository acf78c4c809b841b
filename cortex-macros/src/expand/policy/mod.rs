//! The resilience attributes: `#[circuit_breaker]`, `#[retry]`,
//! `#[bulkhead]`, `#[timeout]` and `#[rate_limit]`, as layers of a stack.

mod config;
mod fallback;
pub(crate) mod mode;
pub(crate) mod signature;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::{LitStr, Path};

use super::nest::{line_of, Ctx, Inner};
use super::{hidden, registration};
use crate::args::Args;
use crate::stack::Kind;
use config::{Config, Predicates};

/// One checked policy attribute.
pub(crate) struct Policy {
    pub(crate) kind: Kind,
    /// `name = "..."`: instances are shared by name.
    pub(crate) name: Option<LitStr>,
    pub(crate) fallback: Option<Path>,
    /// How results are classified.
    predicates: Predicates,
    config: Config,
    pub(crate) krate: TokenStream,
    pub(crate) span: Span,
}

impl Policy {
    pub(crate) fn parse(kind: Kind, attr: TokenStream, span: Span) -> syn::Result<Policy> {
        let attr = if kind == Kind::Timeout {
            timeout_positional(attr)?
        } else {
            attr
        };
        let mut args = Args::parse(attr, kind.name(), config::keys(kind))?;
        let name = args.name("name", "a policy name");
        let fallback = args.path("fallback");
        let krate = args.krate();
        let (config, predicates) = Config::parse(kind, &mut args, span);
        args.finish()?;
        Ok(Policy {
            kind,
            name,
            fallback,
            predicates,
            config,
            krate,
            span,
        })
    }

    /// Wraps the layers below it in this policy (and its fallback).
    pub(crate) fn layer(
        &self,
        ctx: &Ctx,
        index: usize,
        inner: Inner,
    ) -> syn::Result<(TokenStream, Inner)> {
        let krate = &self.krate;
        let site = hidden(&format!("__CORTEX_POLICY_{index}"));
        let entry = hidden(&format!("__CORTEX_POLICY_ENTRY_{index}"));
        let instance = self.config.instance(krate);
        let variant = self.config.variant();
        let config = self.config.render(krate);
        let name = match &self.name {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let (scope, function) = (&ctx.scope, &ctx.function);
        let line = line_of(self.span);
        let registration = registration(
            krate,
            quote!(#krate::__private::policy::POLICY_SITES),
            &entry,
            quote!(#krate::__private::policy::AnySite),
            quote!(#krate::__private::policy::AnySite::#variant(&#site)),
        );
        let statics = quote! {
            static #site: #krate::__private::policy::PolicySite<#instance> =
                #krate::__private::policy::PolicySite::new(
                    #krate::__private::policy::SiteInfo {
                        name: #name,
                        function: #function,
                        module: ::core::module_path!(),
                        scope: #scope,
                        file: ::core::file!(),
                        line: #line,
                    },
                    #config,
                );
            #registration
        };

        // In the wrapped region the innermost policy lifts the plain value.
        let inner = if ctx.wrapped && index == ctx.last_policy {
            let value = inner.expr();
            Inner::Expr(quote!(::core::result::Result::Ok(#value)))
        } else {
            inner
        };
        let ty = if ctx.wrapped {
            ctx.wrapped_type()
        } else {
            ctx.value.clone()
        };
        let reject = &ctx.reject;
        let policy = quote!(#krate::__private::policy);
        let predicate = match self.kind {
            Kind::CircuitBreaker => self.breaker_outcome(krate, &ty),
            _ => self.retry_decision(krate, &ty),
        };
        let call = if ctx.body.is_async() {
            let future = |inner: Inner| inner.future(krate, &ty);
            match self.kind {
                Kind::CircuitBreaker => {
                    let f = future(inner);
                    let describe = describe(krate, &ty);
                    quote!(#policy::breaker(#krate::__private::policy::PolicySite::get(&#site), move || #f, #predicate, #describe, #reject))
                }
                Kind::Retry => {
                    let copies = ctx.params.attempt_copies(krate);
                    let f = future(inner);
                    quote!(#policy::retry(#krate::__private::policy::PolicySite::get(&#site), move || { #copies #f }, #predicate))
                }
                Kind::Bulkhead => {
                    let f = future(inner);
                    quote!(#policy::bulkhead(#krate::__private::policy::PolicySite::get(&#site), move || #f, #reject))
                }
                Kind::Timeout => {
                    let f = future(inner);
                    quote!(#policy::timeout(#krate::__private::policy::PolicySite::get(&#site), #f, #reject))
                }
                _ => {
                    let f = future(inner);
                    quote!(#policy::rate_limit(#krate::__private::policy::PolicySite::get(&#site), move || #f, #reject))
                }
            }
        } else {
            let e = inner.expr();
            match self.kind {
                Kind::CircuitBreaker => {
                    let describe = describe(krate, &ty);
                    quote!(#policy::breaker_sync(#krate::__private::policy::PolicySite::get(&#site), move || #e, #predicate, #describe, #reject))
                }
                Kind::Retry => {
                    let copies = ctx.params.attempt_copies(krate);
                    quote!(#policy::retry_sync(#krate::__private::policy::PolicySite::get(&#site), move || { #copies #e }, #predicate))
                }
                _ => {
                    quote!(#policy::bulkhead_sync(#krate::__private::policy::PolicySite::get(&#site), move || #e, #reject))
                }
            }
        };
        let inner = if ctx.body.is_async() {
            Inner::Future(call)
        } else {
            Inner::Expr(call)
        };
        let out = match &self.fallback {
            Some(path) => fallback::wrap(self, path, ctx, index, inner)?,
            None => inner,
        };
        Ok((statics, out))
    }
}

impl Policy {
    /// `|result| CallOutcome`: Resilience4j's classification with the
    /// attribute's `record_if`, `ignore_if` and `record_result`.
    fn breaker_outcome(&self, krate: &TokenStream, ty: &TokenStream) -> TokenStream {
        let p = &self.predicates;
        let or = |path: &Option<Path>, default: TokenStream| match path {
            Some(path) => quote!(#path),
            None => default,
        };
        let record_if = or(&p.record_if, quote!(|_| true));
        let ignore_if = or(&p.ignore_if, quote!(|_| false));
        let record_result = or(&p.record_result, quote!(|_| false));
        let r = hidden("__cortex_result");
        quote! {
            |#r: &#ty| #krate::resilience::classify(#r, #record_if, #ignore_if, #record_result)
        }
    }

    /// `|result| RetryDecision`: `retry_on_result` for `Ok` values;
    /// `retry_if` for errors, or, without it, every error but a rejection
    /// that retrying cannot help.
    fn retry_decision(&self, krate: &TokenStream, ty: &TokenStream) -> TokenStream {
        let p = &self.predicates;
        let policy = quote!(#krate::__private::policy);
        let decision = quote!(#krate::resilience::RetryDecision);
        let (r, v, e) = (
            hidden("__cortex_result"),
            hidden("__cortex_value"),
            hidden("__cortex_error"),
        );
        let on_ok = match &p.retry_on_result {
            Some(path) => quote!(if #path(#v) { #decision::Retry } else { #decision::Done }),
            None => quote!({ let _ = #v; #decision::Done }),
        };
        let on_err = match &p.retry_if {
            Some(path) => quote!(if #path(#e) { #decision::Retry } else { #decision::Done }),
            None => quote!({
                #[allow(unused_imports)]
                use #policy::{NoRejection as _, RejectionBySelf as _, RejectionBySource as _};
                #policy::decide_error((&&#policy::Probe(#e)).__cortex_rejection())
            }),
        };
        quote! {
            |#r: &#ty| match #r {
                ::core::result::Result::Ok(#v) => #on_ok,
                ::core::result::Result::Err(#e) => #on_err,
            }
        }
    }
}

/// `#[timeout("2s")]`: a leading literal is the duration (`after`).
fn timeout_positional(attr: TokenStream) -> syn::Result<TokenStream> {
    let mut iter = attr.clone().into_iter();
    let Some(TokenTree::Literal(first)) = iter.next() else {
        return Ok(attr);
    };
    let lit = syn::Lit::new(first.clone());
    let rest: Vec<TokenTree> = iter.collect();
    let after = match &lit {
        syn::Lit::Str(_) => quote!(after = #lit),
        syn::Lit::Int(i) if !i.suffix().is_empty() => {
            return Err(syn::Error::new(
                i.span(),
                format!(
                    "a duration is a string: write `#[timeout(\"{}\")]`",
                    i.to_token_stream()
                ),
            ))
        }
        syn::Lit::Float(f) if !f.suffix().is_empty() => {
            return Err(syn::Error::new(
                f.span(),
                format!(
                    "a duration is a string: write `#[timeout(\"{}\")]`",
                    f.to_token_stream()
                ),
            ))
        }
        syn::Lit::Int(i) => {
            return Err(syn::Error::new(
                i.span(),
                format!(
                    "a duration needs a unit and quotes: write `#[timeout(\"{0}ms\")]` or `#[timeout(\"{0}s\")]`",
                    i.base10_digits()
                ),
            ))
        }
        other => {
            return Err(syn::Error::new(
                other.span(),
                "#[timeout] takes a duration string, like `#[timeout(\"2s\")]`",
            ))
        }
    };
    match rest.first() {
        None => Ok(after),
        Some(TokenTree::Punct(p)) if p.as_char() == ',' => {
            let rest: TokenStream = rest.into_iter().skip(1).collect();
            Ok(quote!(#after, #rest))
        }
        Some(other) => Err(syn::Error::new(
            other.span(),
            "expected `,` after the duration",
        )),
    }
}

/// `|result| Option<String>`: an error's message, by what its type offers
/// (`Display`, else `Debug`, else its type), as `#[traced]` records it.
fn describe(krate: &TokenStream, ty: &TokenStream) -> TokenStream {
    let r = hidden("__cortex_result");
    quote! {
        |#r: &#ty| {
            #[allow(unused_imports)]
            use #krate::__private::{
                ErrorIsDebug as _, ErrorIsDisplay as _, ErrorIsError as _, ErrorIsOpaque as _,
                NotAnError as _,
            };
            (&&&&&#krate::__private::ErrorOf(#r)).__cortex_error().map(|(_, message)| message)
        }
    }
}
