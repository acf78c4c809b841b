//! `#[counted]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemFn, LitStr};

use super::{fn_info, hidden, registration, take_sibling, with_error, wrap_observing_result};
use crate::args::{self, Args};
use crate::item;

const KEYS: &[&str] = &["name", "help", "labels", "crate"];
const DEFAULT_NAME: &str = "cortex_function_calls_total";

/// The checked options of one `#[counted]`.
pub(crate) struct Counted {
    pub(crate) name: String,
    pub(crate) help: Option<LitStr>,
    pub(crate) labels: Vec<(String, LitStr)>,
    pub(crate) krate: TokenStream,
}

impl Counted {
    pub(crate) fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut args = Args::parse(attr, "counted", KEYS)?;
        let name = match args.string("name")? {
            Some(lit) => args::metric_name(&lit, "_total")?,
            None => DEFAULT_NAME.to_owned(),
        };
        let help = args.string("help")?;
        let labels = args.labels(&super::reserved_labels())?;
        let krate = args.krate()?;
        Ok(Counted {
            name,
            help,
            labels,
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
    let counted = Counted::parse(attr)?;
    let mut item = item::parse(tokens, "counted")?;
    super::refuse_repeat(&item, "counted")?;
    // `#[cortex::counted] #[cortex::timed]`: one fused expansion.
    if let Some(timed_args) = take_sibling(&mut item, "timed") {
        super::refuse_repeat(&item, "timed")?;
        let timed = super::timed::Timed::parse(timed_args)?;
        return super::fused::generate(&counted, &timed, item);
    }
    generate(&counted, item)
}

fn generate(counted: &Counted, mut item: ItemFn) -> syn::Result<TokenStream> {
    let krate = &counted.krate;
    let function = item::function_name(&item);
    let info = fn_info(
        krate,
        &counted.name,
        &counted.help,
        &function,
        &counted.labels,
    );
    let site = hidden("__CORTEX_COUNTED_SITE");
    let entry = hidden("__CORTEX_COUNTED_ENTRY");
    let registration = registration(
        krate,
        &entry,
        quote!(#krate::__private::Site::Counted(&#site)),
    );
    let statics = quote! {
        static #site: #krate::__private::CountedSite = #krate::__private::CountedSite::new(#info);
        #registration
    };
    let start = quote!(#krate::__private::CountedCall::start(&#site));
    wrap_observing_result(&mut item, krate, statics, start)?;
    Ok(quote!(#item))
}
