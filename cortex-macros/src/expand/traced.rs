//! `#[traced]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{parse_quote, Expr, ItemFn, LitStr, Token};

use super::{hidden, with_error};
use crate::args::{self, Args};
use crate::item;

const KEYS: &[&str] = &["name", "kind", "attributes", "crate"];
const KINDS: &[(&str, &str)] = &[
    ("internal", "Internal"),
    ("server", "Server"),
    ("client", "Client"),
    ("producer", "Producer"),
    ("consumer", "Consumer"),
];

struct Traced {
    name: Option<LitStr>,
    kind: syn::Ident,
    attributes: Vec<(String, Expr)>,
    krate: TokenStream,
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
    fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut args = Args::parse(attr, "traced", KEYS)?;
        let name = args.string("name")?;
        if let Some(n) = &name {
            if n.value().trim().is_empty() {
                return Err(syn::Error::new(n.span(), "a span name cannot be empty"));
            }
        }
        let kind = match args.string("kind")? {
            None => syn::Ident::new("Internal", proc_macro2::Span::call_site()),
            Some(lit) => match KINDS.iter().find(|(k, _)| *k == lit.value()) {
                Some((_, variant)) => syn::Ident::new(variant, lit.span()),
                None => {
                    return Err(syn::Error::new(
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
                    ))
                }
            },
        };
        let attributes = match args.take("attributes") {
            None => Vec::new(),
            Some(arg) => match arg.value {
                args::Value::List(tokens, _) => {
                    let parsed = syn::parse::Parser::parse2(
                        Punctuated::<Attribute, Token![,]>::parse_terminated,
                        tokens,
                    )?;
                    let mut out: Vec<(String, Expr)> = Vec::new();
                    for a in parsed {
                        if a.key.is_empty() {
                            return Err(syn::Error::new(a.span, "an attribute key cannot be empty"));
                        }
                        if out.iter().any(|(k, _)| *k == a.key) {
                            return Err(syn::Error::new(
                                a.span,
                                format!("duplicate attribute `{}`: give each key once", a.key),
                            ));
                        }
                        out.push((a.key, a.value));
                    }
                    out
                }
                _ => {
                    return Err(syn::Error::new(
                        arg.key.span(),
                        "`attributes` takes a list: `attributes(user.id = user, order.size = items.len())`",
                    ))
                }
            },
        };
        let krate = args.krate()?;
        Ok(Traced {
            name,
            kind,
            attributes,
            krate,
        })
    }
}

pub(crate) fn expand(attr: TokenStream, tokens: TokenStream) -> TokenStream {
    match try_expand(attr, tokens.clone()) {
        Ok(out) => out,
        Err(err) => with_error(tokens, &err),
    }
}

fn try_expand(attr: TokenStream, tokens: TokenStream) -> syn::Result<TokenStream> {
    let traced = Traced::parse(attr.clone())?;
    let mut item = item::parse(tokens, "traced")?;
    super::refuse_repeat(&item, "traced")?;
    // The span must be current while #[counted] / #[timed] record, so their
    // samples carry it as an exemplar: let them expand first (the attribute
    // expanded last wraps the others).
    if has_sibling(&item, &["counted", "timed"]) {
        let krate = &traced.krate;
        item.attrs.push(parse_quote!(#[#krate::traced(#attr)]));
        return Ok(quote!(#item));
    }
    generate(&traced, item)
}

fn has_sibling(item: &ItemFn, names: &[&str]) -> bool {
    item.attrs.iter().any(|attr| {
        let path = attr.path();
        path.segments.len() == 2
            && path.segments[0].ident == "cortex"
            && names.iter().any(|n| path.segments[1].ident == n)
    })
}

fn generate(traced: &Traced, mut item: ItemFn) -> syn::Result<TokenStream> {
    let krate = &traced.krate;
    let function = item::function_name(&item);
    let name = match &traced.name {
        Some(lit) => quote!(#lit),
        None => quote!(::core::concat!(::core::module_path!(), "::", #function)),
    };
    let kind = &traced.kind;
    let site = hidden("__CORTEX_TRACED_SITE");
    let call = hidden("__cortex_span");
    let out = hidden("__cortex_out");
    let statics = quote! {
        static #site: #krate::__private::TracedSite = #krate::__private::TracedSite {
            name: #name,
            kind: #krate::__private::SpanKind::#kind,
        };
    };
    let attributes = traced.attributes.iter().map(|(key, value)| {
        // Spanned on the expression: a type that cannot be an attribute is
        // reported there.
        let converted = quote_spanned! {value.span()=>
            #krate::__private::ToAttribute::to_attribute(&(#value))
        };
        quote! {
            #call.attribute(#key, #converted);
        }
    });
    let set_attributes = quote! {
        if #call.is_recording() {
            #(#attributes)*
        }
    };
    let finish = quote! {
        {
            #[allow(unused_imports)]
            use #krate::__private::{
                ErrorIsDebug as _, ErrorIsDisplay as _, ErrorIsError as _, ErrorIsOpaque as _,
                NotAnError as _,
            };
            let __error = if #call.is_recording() {
                (&&&&&#krate::__private::ErrorOf(&#out)).__cortex_error()
            } else {
                ::core::option::Option::None
            };
            #call.finish(__error);
        }
    };
    super::wrap_body(
        &mut item,
        krate,
        super::Wrap {
            statics,
            call,
            out,
            start_sync: quote!(#krate::__private::TracedCall::enter(&#site)),
            start_async: quote!(#krate::__private::TracedCall::start(&#site)),
            prologue: set_attributes,
            finish,
            // The body's future carries the span to whatever polls it.
            instrument: |call, future| quote!(#call.instrument(#future)),
        },
    )?;
    Ok(quote!(#item))
}
