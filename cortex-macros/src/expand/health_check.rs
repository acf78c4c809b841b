//! `#[health_check]`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{FnArg, ItemFn};

use super::{hidden, registration, with_error};
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
    if let Err(e) = check_signature(&item) {
        args.error(e);
    }
    let name = args
        .name("name", "a health check name")
        .map(|lit| lit.value())
        .unwrap_or_else(|| item::function_name(&item));
    let group = match args.string("group") {
        Some(lit) if !GROUPS.contains(&lit.value().as_str()) => {
            args.error(syn::Error::new(
                lit.span(),
                format!(
                    "unknown group \"{}\"; the groups are \"liveness\", \"readiness\" and \"both\"",
                    lit.value()
                ),
            ));
            "readiness".to_owned()
        }
        Some(lit) => lit.value(),
        None => "readiness".to_owned(),
    };
    let critical = args.boolean("critical").unwrap_or(true);
    let timeout_nanos = args
        .string("timeout")
        .and_then(|lit| {
            let parsed = cortex_rules::parse_duration(&lit.value())
                .map_err(|e| syn::Error::new(lit.span(), e.to_string()));
            args.errors.ok(parsed)
        })
        .unwrap_or(DEFAULT_TIMEOUT_NANOS);
    let krate = args.krate();
    args.finish()?;

    let fn_name = &item.sig.ident;
    let function = item::function_name(&item);
    let group_variant = match group.as_str() {
        "liveness" => quote!(Liveness),
        "readiness" => quote!(Readiness),
        _ => quote!(Both),
    };
    // The conversion's argument carries the return type's span, so a type
    // that is not a health result is reported on that type.
    let span = match &item.sig.output {
        syn::ReturnType::Type(_, ty) => syn::spanned::Spanned::span(&**ty),
        syn::ReturnType::Default => Span::call_site(),
    };
    let value = syn::Ident::new("__cortex_value", span.resolved_at(Span::mixed_site()));
    // Every name the expansion adds is hidden: a user's `fn check()` or
    // `fn run()` is called, never shadowed.
    let blocking = hidden("__cortex_health_blocking");
    let run_body = if item.sig.asyncness.is_some() {
        quote! {
            #krate::__private::health_async(async {
                let #value = #fn_name().await;
                #krate::__private::to_health(#value)
            })
        }
    } else {
        quote! {
            fn #blocking() -> #krate::health::Health {
                let #value = #fn_name();
                #krate::__private::to_health(#value)
            }
            #krate::__private::health_blocking(#blocking)
        }
    };
    let run = hidden("__cortex_health_run");
    let entry = hidden("__CORTEX_HEALTH_ENTRY");
    let registration = registration(
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
                function: #function,
                module: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
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
