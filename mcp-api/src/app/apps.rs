//! The apps page: who wrote or read memories, who holds access at the provider, revoking
//! it, and the activity chart.

use std::collections::HashMap;
use std::time::Duration;

use super::chart::{self, AppSeries};
use super::form::Fields;
use super::oauth::GrantedApp;
use super::pages::{Answer, Current, Pages, redirect};
use super::session::AppNames;
use super::time::{self, DAY_MS};
use super::views::{self, AppRow, Section};
use crate::store::{MemoryStore, StoreError};

/// Days in the activity chart.
const CHART_DAYS: i64 = 30;
/// Least time between two requests for app names made because an app was not known.
const NAMES_REFRESH: Duration = Duration::from_secs(30);

impl<S: MemoryStore> Pages<S> {
    pub(super) async fn apps(
        &self,
        current: &Current,
        query: &Fields,
    ) -> Result<Answer, StoreError> {
        let owner = current.owner();
        let stats = self.store.stats(owner).await?;
        let now_ms = i64::try_from(self.unix_now()).unwrap_or(0) * 1000;
        let first_day = (now_ms.div_euclid(DAY_MS) - (CHART_DAYS - 1)) * DAY_MS;
        let activity = self.store.activity(owner, first_day).await?;
        let granted = self.provider.granted_apps(&current.access_token).await;
        let grants_unavailable = granted.is_err();
        if let Err(error) = &granted {
            tracing::warn!(%error, "could not list the apps holding grants");
        }
        let granted: Vec<GrantedApp> = granted.unwrap_or_default();
        let mut rows: Vec<AppRow> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for app in &stats.apps {
            index.insert(app.app.clone(), rows.len());
            rows.push(AppRow {
                client_id: app.app.clone(),
                name: app.app.clone(),
                written: app.memories_created,
                read: app.memories_accessed,
                last_used: app.last_used_at,
                grant: None,
                this_page: app.app == self.config.client_id,
            });
        }
        for grant in &granted {
            let at = *index.entry(grant.client_id.clone()).or_insert_with(|| {
                rows.push(AppRow {
                    client_id: grant.client_id.clone(),
                    name: grant.client_id.clone(),
                    written: 0,
                    read: 0,
                    last_used: None,
                    grant: None,
                    this_page: grant.client_id == self.config.client_id,
                });
                rows.len() - 1
            });
            let row = &mut rows[at];
            row.name = grant.name.clone();
            row.grant = Some((
                i64::try_from(grant.first_granted_at).unwrap_or(0) * 1000,
                grant.scope.clone(),
            ));
        }
        Self::remember_names(&current.session.apps, &granted);
        rows.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.name.cmp(&b.name)));

        let names: HashMap<&str, &str> = rows
            .iter()
            .map(|row| (row.client_id.as_str(), row.name.as_str()))
            .collect();
        let days: Vec<i64> = (0..CHART_DAYS).map(|n| first_day + n * DAY_MS).collect();
        let mut series: Vec<AppSeries> = Vec::new();
        let mut series_index: HashMap<&str, usize> = HashMap::new();
        for entry in &activity {
            let Ok(day) = usize::try_from((entry.day - first_day) / DAY_MS) else {
                continue;
            };
            if day >= days.len() {
                continue;
            }
            let at = *series_index.entry(entry.app.as_str()).or_insert_with(|| {
                series.push(AppSeries {
                    label: names
                        .get(entry.app.as_str())
                        .map_or_else(|| entry.app.clone(), |name| (*name).to_owned()),
                    added: vec![0; days.len()],
                    read: vec![0; days.len()],
                });
                series.len() - 1
            });
            series[at].added[day] += entry.added;
            series[at].read[day] += entry.read;
        }
        let activity = chart::Activity {
            days: days.iter().map(|day| time::short_day(*day)).collect(),
            apps: series,
        };
        Ok(self.page_with_notice(
            "Apps",
            current,
            Section::Apps,
            query,
            &views::apps(&rows, &activity, grants_unavailable, &current.session.csrf),
        ))
    }

    pub(super) async fn revoke(&self, current: &Current, fields: &Fields) -> Answer {
        let Some(client_id) = fields.get("client_id") else {
            return self.bad_request(current, "No app chosen.");
        };
        match self
            .provider
            .revoke_app(&current.access_token, client_id)
            .await
        {
            Ok(revoked) => {
                tracing::info!(
                    subject = current.owner().as_str(),
                    client_id,
                    revoked,
                    "revoked an app's access from the memory page"
                );
                if client_id == self.config.client_id {
                    // The page's own access: this session ends with it.
                    if self.sessions.end(&current.session).await.is_err() {
                        return self.sessions_unavailable();
                    }
                    let mut response = redirect("/app/login?signed_out=1");
                    self.set_cookie(&mut response, self.session_cookie, "", 0);
                    return response;
                }
                redirect(&format!("/app/apps?notice=revoked&n={revoked}"))
            }
            Err(error) => self.provider_failed(&error),
        }
    }

    /// Display names of apps (client ids), as the provider names them. Learnt once per
    /// session and asked again, at most every [`NAMES_REFRESH`], when an app is not known
    /// yet (one registered since); an app the provider does not know keeps its client id.
    pub(super) async fn app_names<'a>(
        &self,
        current: &Current,
        apps: impl Iterator<Item = &'a str> + Clone,
    ) -> HashMap<String, String> {
        let unknown = {
            let known = current
                .session
                .apps
                .names
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            apps.clone().any(|app| !known.contains_key(app))
        };
        if unknown
            && current
                .session
                .may_refresh_names(NAMES_REFRESH, self.clock.now())
            && let Ok(granted) = self.provider.granted_apps(&current.access_token).await
        {
            Self::remember_names(&current.session.apps, &granted);
        }
        let known = current
            .session
            .apps
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        apps.filter_map(|app| known.get(app).map(|name| (app.to_owned(), name.clone())))
            .collect()
    }

    pub(super) fn remember_names(apps: &AppNames, granted: &[GrantedApp]) {
        let mut known = apps
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for grant in granted {
            if known.len() < 1000 {
                known.insert(grant.client_id.clone(), grant.name.clone());
            }
        }
    }
}

pub(super) fn name_of(names: &HashMap<String, String>, app: &str) -> String {
    names.get(app).cloned().unwrap_or_else(|| app.to_owned())
}
