//! Fetching live URLs: every hop of the redirect chain is requested by hand so
//! the `Set-Cookie` headers of each response are seen, not only the last.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::{Client, Url};

use super::input::Observed;

/// Fetches URLs with a timeout and a redirect limit.
#[derive(Debug)]
pub struct Fetcher {
    client: Client,
    max_redirects: usize,
}

impl Fetcher {
    /// A client that never follows redirects by itself.
    ///
    /// # Errors
    /// When the TLS stack cannot be set up.
    pub fn new(timeout: Duration, max_redirects: usize) -> anyhow::Result<Self> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("latch-audit/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Self {
            client,
            max_redirects,
        })
    }

    /// GET `url` and each redirect after it; the `Set-Cookie` headers of every hop.
    ///
    /// # Errors
    /// A URL that is not http(s), a request that fails or times out, or too many
    /// redirects.
    pub async fn fetch(&self, url: &str) -> anyhow::Result<Vec<Observed>> {
        let mut current = parse_url(url)?;
        let mut found = Vec::new();
        for _ in 0..=self.max_redirects {
            let response = self
                .client
                .get(current.clone())
                .send()
                .await
                .with_context(|| format!("requesting {current}"))?;
            found.extend(set_cookies(&current, response.headers()));
            let Some(next) = redirect_target(&current, &response)? else {
                return Ok(found);
            };
            current = next;
        }
        bail!("more than {} redirects", self.max_redirects)
    }
}

/// An absolute http or https URL.
pub fn parse_url(text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).with_context(|| format!("{text:?} is not a URL"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(anyhow!(
            "{text}: only http and https URLs can be fetched, not {other}"
        )),
    }
}

fn set_cookies(url: &Url, headers: &reqwest::header::HeaderMap) -> Vec<Observed> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| Observed {
            source: url.to_string(),
            url: Some(url.to_string()),
            host: url.host_str().map(str::to_owned),
            header: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect()
}

/// Where a redirect response points, resolved against `current`; `None` when
/// the response is not a redirect.
fn redirect_target(current: &Url, response: &reqwest::Response) -> anyhow::Result<Option<Url>> {
    if !response.status().is_redirection() {
        return Ok(None);
    }
    let Some(location) = response.headers().get(LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .with_context(|| format!("{current}: the redirect Location is not text"))?;
    let next = current
        .join(location)
        .with_context(|| format!("{current}: bad redirect Location {location:?}"))?;
    parse_url(next.as_str()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls() {
        assert!(parse_url("https://example.com/").is_ok());
        assert!(parse_url("http://127.0.0.1:8080/x").is_ok());
        let err = parse_url("file:///etc/passwd").unwrap_err().to_string();
        assert!(err.contains("only http and https"), "{err}");
        assert!(parse_url("example.com").is_err());
    }
}
