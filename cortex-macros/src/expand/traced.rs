//! `#[traced]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, LitStr, Token};

use super::hidden;
use super::nest::{Ctx, Inner};
use crate::args::{self, Args};

const KEYS: &[&str] = &["name", "kind", "attributes", "crate"];
const KINDS: &[(&str, &str)] = &[
    ("internal", "Internal"),
    ("server", "Server"),
    ("client", "Client"),
    ("producer", "Producer"),
    ("consumer", "Consumer"),
];

/// The checked options of one `#[traced]`.
pub(crate) struct Traced {
    name: Option<LitStr>,
    kind: syn::Ident,
    attributes: Vec<(String, Expr)>,
    pub(crate) krate: TokenStream,
    pub(crate) span: Span,
}

/// `user.id = expr`: a dotted key (or a string literal) and an expression.
struct Attribute {
    key: String,
    span: proc_macro2::Span,
    value: Expr,
}

impl Parse for Attribute {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let (key, span) = if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            (lit.value(), lit.span())
        } else {
            let first = syn::Ident::parse_any(input)?;
            let mut key = first.unraw().to_string();
            let mut span = first.span();
            while input.peek(Token![.]) {
                input.parse::<Token![.]>()?;
                let part = syn::Ident::parse_any(input)?;
                key.push('.');
                key.push_str(&part.unraw().to_string());
                span = span.join(part.span()).unwrap_or(span);
            }
            (key, span)
        };
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(Attribute { key, span, value })
    }
}

impl Traced {
    pub(crate) fn parse(attr: TokenStream, span: Span) -> syn::Result<Self> {
        let mut args = Args::parse(attr, "traced", KEYS)?;
        let name = args.name("name", "a span name");
        let kind = args
            .string("kind")
            .and_then(|lit| match KINDS.iter().find(|(k, _)| *k == lit.value()) {
                Some((_, variant)) => Some(syn::Ident::new(variant, lit.span())),
                None => {
                    args.error(syn::Error::new(
                        lit.span(),
                        format!(
                            "unknown span kind {:?}; valid kinds are: {}",
                            lit.value(),
                            KINDS
                                .iter()
                                .map(|(k, _)| format!("\"{k}\""))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                    None
                }
            })
            .unwrap_or_else(|| syn::Ident::new("Internal", Span::call_site()));
        let attributes = match args.take("attributes") {
            None => Vec::new(),
            Some(arg) => {
                let parsed = attributes(arg);
                args.errors.ok(parsed).unwrap_or_default()
            }
        };
        let krate = args.krate();
        args.finish()?;
        Ok(Traced {
            name,
            kind,
            attributes,
            krate,
            span,
        })
    }

    /// Makes each call of the layers below it a span: current while they
    /// run (for async code, whenever their future is polled).
    pub(crate) fn layer(&self, ctx: &Ctx, index: usize, inner: Inner) -> (TokenStream, Inner) {
        let krate = &self.krate;
        let function = &ctx.function;
        let name = match &self.name {
            Some(lit) => quote!(#lit),
            None => quote!(::core::concat!(::core::module_path!(), "::", #function)),
        };
        let kind = &self.kind;
        let site = hidden(&format!("__CORTEX_TRACED_{index}"));
        let call = hidden(&format!("__cortex_span_{index}"));
        let out = hidden(&format!("__cortex_out_{index}"));
        let error = hidden(&format!("__cortex_error_{index}"));
        let statics = quote! {
            static #site: #krate::__private::TracedSite = #krate::__private::TracedSite {
                name: #name,
                kind: #krate::__private::SpanKind::#kind,
            };
        };
        let attributes = self.attributes.iter().map(|(key, value)| {
            // Spanned on the expression: a type that cannot be an attribute
            // is reported there.
            let converted = quote_spanned! {value.span()=>
                #krate::__private::ToAttribute::to_attribute(&(#value))
            };
            quote! {
                #krate::__private::TracedCall::attribute(&mut #call, #key, #converted);
            }
        });
        let prologue = if self.attributes.is_empty() {
            TokenStream::new()
        } else {
            // Arguments written as patterns are bound (by reference) for
            // the attribute expressions.
            let bindings = ctx.params.borrowed_patterns();
            quote! {
                if #krate::__private::TracedCall::is_recording(&#call) {
                    #bindings
                    #(#attributes)*
                }
            }
        };
        let finish = quote! {
            {
                #[allow(unused_imports)]
                use #krate::__private::{
                    ErrorIsDebug as _, ErrorIsDisplay as _, ErrorIsError as _, ErrorIsOpaque as _,
                    NotAnError as _,
                };
                let #error = if #krate::__private::TracedCall::is_recording(&#call) {
                    (&&&&&#krate::__private::ErrorOf(&#out)).__cortex_error()
                } else {
                    ::core::option::Option::None
                };
                #krate::__private::TracedCall::finish(#call, #error);
            }
        };
        let ty = ctx.carried(index);
        let expr = if ctx.body.is_async() {
            // The future carries the span to whatever polls it.
            let future = inner.future(krate, &ty);
            quote! {{
                #[allow(unused_mut)]
                let mut #call = #krate::__private::TracedCall::start(&#site);
                #prologue
                #[allow(unreachable_code)]
                let #out: #ty = #krate::__private::TracedCall::instrument(&#call, #future).await;
                #[allow(unreachable_code)]
                #finish
                #out
            }}
        } else {
            let inner = inner.expr();
            quote! {{
                #[allow(unused_mut)]
                let mut #call = #krate::__private::TracedCall::enter(&#site);
                #prologue
                #[allow(unreachable_code)]
                let #out: #ty = #inner;
                #[allow(unreachable_code)]
                #finish
                #out
            }}
        };
        (statics, Inner::Expr(expr))
    }
}

/// `attributes(user.id = user, ...)`.
fn attributes(arg: args::Arg) -> syn::Result<Vec<(String, Expr)>> {
    let tokens =
        match arg.value {
            args::Value::List(tokens, _) => tokens,
            _ => return Err(syn::Error::new(
                arg.key.span(),
                "`attributes` takes a list: `attributes(user.id = user, order.size = items.len())`",
            )),
        };
    let parsed =
        syn::parse::Parser::parse2(Punctuated::<Attribute, Token![,]>::parse_terminated, tokens)?;
    let mut errors = args::Errors::default();
    let mut out: Vec<(String, Expr)> = Vec::new();
    for a in parsed {
        if a.key.is_empty() {
            errors.push(syn::Error::new(a.span, "an attribute key cannot be empty"));
        } else if out.iter().any(|(k, _)| *k == a.key) {
            errors.push(syn::Error::new(
                a.span,
                format!("duplicate attribute `{}`: give each key once", a.key),
            ));
        } else {
            out.push((a.key, a.value));
        }
    }
    errors.finish()?;
    Ok(out)
}
