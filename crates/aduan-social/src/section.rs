//! `[channels.meta]` and `[channels.x]`: the sections as written in the configuration,
//! their checks, and the [`MetaConfig`] / [`XConfig`] they resolve to.

use std::path::PathBuf;

use aduan_connector::Secret;
use aduan_connector::config::{BuildContext, ChannelConfig, Check, Problem, Resolve};
use serde::{Deserialize, Serialize};

use crate::{META_MEDIA_HOSTS, MetaConfig, XConfig};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaSection {
    pub enabled: bool,
    pub app_secret: Option<Secret>,
    pub app_secret_file: Option<PathBuf>,
    pub verify_token: Option<Secret>,
    pub verify_token_file: Option<PathBuf>,
    pub page_access_token: Option<Secret>,
    pub page_access_token_file: Option<PathBuf>,
    pub whatsapp_token: Option<Secret>,
    pub whatsapp_token_file: Option<PathBuf>,
    pub whatsapp_phone_number_id: Option<String>,
    pub graph_api_url: Option<String>,
    /// Hosts media may be fetched from over https besides `graph_api_url`'s origin (names
    /// or `*.suffix`). Default: Meta's CDNs ([`META_MEDIA_HOSTS`]).
    pub media_hosts: Option<Vec<String>>,
    /// The approved template sent on WhatsApp outside the 24-hour window: `{ name,
    /// language, params }`, params from `code`, `status`, `link` (default all three).
    pub whatsapp_template: Option<crate::send::WhatsappTemplate>,
    /// Answer Messenger/Instagram up to 7 days with the `HUMAN_AGENT` tag (needs Meta's
    /// approval; default false).
    pub human_agent_tag: bool,
}

impl ChannelConfig for MetaSection {
    const KEY: &'static str = "meta";
    type Settings = MetaConfig;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn problems(&self) -> Vec<Problem> {
        let m = self;
        let mut c = Check::channel(Self::KEY);
        let app_secret = c.secret("app_secret", &m.app_secret, &m.app_secret_file);
        let verify = c.secret("verify_token", &m.verify_token, &m.verify_token_file);
        let page = c.secret("page_access_token", &m.page_access_token, &m.page_access_token_file);
        let wa = c.secret("whatsapp_token", &m.whatsapp_token, &m.whatsapp_token_file);
        c.url("graph_api_url", m.graph_api_url.as_deref(), &["http", "https"]);
        c.media_hosts("media_hosts", &m.media_hosts);
        if let Some(t) = &m.whatsapp_template {
            let bad = |v: &str| v.trim().is_empty() || v.chars().any(char::is_whitespace);
            if bad(&t.name) {
                c.push("whatsapp_template.name", "must be the template's name, without spaces");
            }
            if bad(&t.language) {
                c.push("whatsapp_template.language", "must be a language code such as \"id\"");
            }
        }
        if m.enabled {
            c.require("app_secret", &app_secret);
            c.require("verify_token", &verify);
            c.strong("app_secret", &m.app_secret_file, &app_secret);
            c.strong("verify_token", &m.verify_token_file, &verify);
            c.not_empty("page_access_token", &m.page_access_token_file, &page);
            c.not_empty("whatsapp_token", &m.whatsapp_token_file, &wa);
            if (m.whatsapp_token.is_some() || m.whatsapp_token_file.is_some())
                && m.whatsapp_phone_number_id.is_none()
            {
                c.push(
                    "whatsapp_phone_number_id",
                    "is required to answer on WhatsApp (with whatsapp_token)",
                );
            }
        }
        c.finish()
    }

    fn settings(&self, cx: &BuildContext) -> Result<MetaConfig, Vec<Problem>> {
        let mut r = Resolve::channel(Self::KEY);
        let app_secret = r.secret("app_secret", &self.app_secret, &self.app_secret_file);
        let app_secret = r.required("app_secret", app_secret);
        let verify_token = r.secret("verify_token", &self.verify_token, &self.verify_token_file);
        let verify_token = r.required("verify_token", verify_token);
        let page_access_token =
            r.secret("page_access_token", &self.page_access_token, &self.page_access_token_file);
        let whatsapp_token =
            r.secret("whatsapp_token", &self.whatsapp_token, &self.whatsapp_token_file);
        r.done(MetaConfig {
            app_secret,
            verify_token,
            page_access_token,
            whatsapp_token,
            whatsapp_phone_number_id: self.whatsapp_phone_number_id.clone(),
            graph_api_url: self
                .graph_api_url
                .clone()
                .unwrap_or_else(|| "https://graph.facebook.com/v21.0".into()),
            media_hosts: self
                .media_hosts
                .clone()
                .unwrap_or_else(|| META_MEDIA_HOSTS.iter().map(|h| (*h).to_owned()).collect()),
            whatsapp_template: self.whatsapp_template.clone(),
            human_agent_tag: self.human_agent_tag,
            public_url: cx.public_url.clone(),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XSection {
    pub enabled: bool,
    pub consumer_secret: Option<Secret>,
    pub consumer_secret_file: Option<PathBuf>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<PathBuf>,
    pub api_url: Option<String>,
}

impl ChannelConfig for XSection {
    const KEY: &'static str = "x";
    type Settings = XConfig;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn problems(&self) -> Vec<Problem> {
        let x = self;
        let mut c = Check::channel(Self::KEY);
        let consumer = c.secret("consumer_secret", &x.consumer_secret, &x.consumer_secret_file);
        let bearer = c.secret("bearer_token", &x.bearer_token, &x.bearer_token_file);
        c.url("api_url", x.api_url.as_deref(), &["http", "https"]);
        if x.enabled {
            c.require("consumer_secret", &consumer);
            c.strong("consumer_secret", &x.consumer_secret_file, &consumer);
            c.not_empty("bearer_token", &x.bearer_token_file, &bearer);
        }
        c.finish()
    }

    fn settings(&self, _cx: &BuildContext) -> Result<XConfig, Vec<Problem>> {
        let mut r = Resolve::channel(Self::KEY);
        let consumer_secret =
            r.secret("consumer_secret", &self.consumer_secret, &self.consumer_secret_file);
        let consumer_secret = r.required("consumer_secret", consumer_secret);
        let bearer_token = r.secret("bearer_token", &self.bearer_token, &self.bearer_token_file);
        r.done(XConfig {
            consumer_secret,
            bearer_token,
            api_url: self.api_url.clone().unwrap_or_else(|| "https://api.x.com".into()),
        })
    }
}
