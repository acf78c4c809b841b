//! `#[health_check]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn};

use super::{hidden, registration_in, with_error};
use crate::args::Args;
use crate::item;

const KEYS: &[&str] = &["name", "group", "critical", "timeout", "crate"];
const GROUPS: &[&str] = &["liveness", "readiness", "both"];
const DEFAULT_TIMEOUT_NANOS: u64 = 5_000_000_000;

pub(crate) fn expand(attr: TokenStream, tokens: TokenStream) -> TokenStream {
    match try_expand(attr, tokens.clone()) {
        Ok(out) => out,
        Err(err) => with_error(tokens, &err),
    }
}

fn try_expand(attr: TokenStream, tokens: TokenStream) -> syn::Result<TokenStream> {
    let mut args = Args::parse(attr, "health_check", KEYS)?;
    let item = item::parse(tokens, "health_check")?;
    check_signature(&item)?;

    let name = match args.string("name")? {
        Some(lit) => {
            let value = lit.value();
            if value.trim().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "a health check name must not be empty",
                ));
            }
            value
        }
        None => item::function_name(&item),
    };
    let group = match args.string("group")? {
        Some(lit) => {
            let value = lit.value();
            if !GROUPS.contains(&value.as_str()) {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "unknown group \"{value}\"; the groups are \"liveness\", \"readiness\" and \"both\""
                    ),
                ));
            }
            value
        }
        None => "both".to_owned(),
    };
    let critical = match args.take("critical") {
        None => true,
        Some(arg) => match arg.value {
            crate::args::Value::Expr(syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Bool(b),
                ..
            })) => b.value,
            crate::args::Value::Expr(other) => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`critical` expects `true` or `false`",
                ))
            }
            _ => {
                return Err(syn::Error::new(
                    arg.key.span(),
                    "`critical` expects a value: `critical = false`",
                ))
            }
        },
    };
    let timeout_nanos = match args.string("timeout")? {
        Some(lit) => cortex_rules::parse_duration(&lit.value())
            .map_err(|e| syn::Error::new(lit.span(), e.to_string()))?,
        None => DEFAULT_TIMEOUT_NANOS,
    };
    let krate = args.krate()?;

    let fn_name = &item.sig.ident;
    let group_variant = match group.as_str() {
        "liveness" => quote!(Liveness),
        "readiness" => quote!(Readiness),
        _ => quote!(Both),
    };
    // The conversion's argument carries the return type's span, so a type
    // that is not a health result is reported on that type.
    let span = match &item.sig.output {
        syn::ReturnType::Type(_, ty) => syn::spanned::Spanned::span(&**ty),
        syn::ReturnType::Default => proc_macro2::Span::call_site(),
    };
    let value = syn::Ident::new("__cortex_value", span);
    let run_body = if item.sig.asyncness.is_some() {
        quote! {
            #krate::__private::health_async(async {
                let #value = #fn_name().await;
                #krate::__private::to_health(#value)
            })
        }
    } else {
        quote! {
            fn check() -> #krate::health::Health {
                let #value = #fn_name();
                #krate::__private::to_health(#value)
            }
            #krate::__private::health_blocking(check)
        }
    };
    let run = hidden("__cortex_health_run");
    let entry = hidden("__CORTEX_HEALTH_ENTRY");
    let registration = registration_in(
        &krate,
        quote!(#krate::__private::HEALTH_CHECKS),
        &entry,
        quote!(#krate::__private::HealthEntry),
        quote! {
            #krate::__private::HealthEntry {
                name: #name,
                group: #krate::__private::Group::#group_variant,
                critical: #critical,
                timeout_nanos: #timeout_nanos,
                run: #run,
            }
        },
    );
    Ok(quote! {
        #item
        const _: () = {
            fn #run() -> #krate::__private::BoxedHealth {
                #run_body
            }
            #registration
        };
    })
}

fn check_signature(item: &ItemFn) -> syn::Result<()> {
    if let Some(arg) = item.sig.inputs.first() {
        let what = if matches!(arg, FnArg::Receiver(_)) {
            "a method"
        } else {
            "a function with parameters"
        };
        return Err(syn::Error::new_spanned(
            &item.sig.inputs,
            format!(
                "#[health_check] cannot be used on {what}: a health check is a free function with no parameters"
            ),
        ));
    }
    if !item.sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.sig.generics,
            "#[health_check] cannot be used on a generic function",
        ));
    }
    if let syn::ReturnType::Default = item.sig.output {
        return Err(syn::Error::new_spanned(
            &item.sig.ident,
            "a health check returns `cortex::health::Health`, `bool` or `Result<(), E: Display>`",
        ));
    }
    Ok(())
}
