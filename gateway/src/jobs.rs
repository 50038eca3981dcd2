//! Long management work (volume start and stop, heal) as jobs: the API answers a job at once
//! (202 Accepted, `Location: /api/v1/jobs/ID`) and `GET /api/v1/jobs/{id}` tells its state,
//! progress and, once it ends, its result or error. gwctl and the console poll it and show the
//! progress. Jobs live in memory: the last [`KEEP`] finished ones are kept.

use crate::error::ManagerError;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Finished jobs kept for `GET /jobs`.
const KEEP: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// How far a job is: `done` of `total` steps (`total` 0 when unknown) and what it does now.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct JobProgress {
    pub done: u64,
    pub total: u64,
    pub message: String,
}

/// A job as `GET /api/v1/jobs/{id}` shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    /// What it does, as the command says it: `volume start`, `volume heal full`, …
    pub kind: String,
    /// What it works on (a volume name).
    pub target: String,
    pub state: JobState,
    pub progress: JobProgress,
    /// When it started and ended (Unix time, milliseconds).
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
    /// Seconds it ran (so far, while running).
    pub elapsed_secs: f64,
    /// The answer of the work once it succeeded: what the synchronous call would have
    /// answered (a volume, heal info, …).
    pub result: Option<serde_json::Value>,
    /// Why it failed, and the HTTP status of that kind of error (400, 404, 409, 500).
    pub error: Option<String>,
    pub error_status: Option<u16>,
}

struct Cell {
    job: Mutex<Job>,
    began: Instant,
}

impl Cell {
    fn view(&self) -> Job {
        let mut j = self.job.lock().clone();
        if j.state == JobState::Running {
            j.elapsed_secs = self.began.elapsed().as_secs_f64();
        }
        j
    }
}

/// Where a job reports its progress; also what the work functions take when no job runs them
/// ([`Progress::none`]).
#[derive(Clone)]
pub struct Progress(Option<Arc<Cell>>);

impl Progress {
    pub fn none() -> Progress {
        Progress(None)
    }

    /// `done` of `total` steps (0: unknown), doing `message`.
    pub fn set(&self, done: u64, total: u64, message: impl Into<String>) {
        let message = message.into();
        if let Some(c) = &self.0 {
            let mut j = c.job.lock();
            if j.progress.message != message {
                tracing::debug!(job = %j.id, kind = %j.kind, target = %j.target, "{message}");
            }
            j.progress = JobProgress {
                done,
                total,
                message,
            };
        }
    }
}

/// The jobs of this gatewayd.
#[derive(Default)]
pub struct Jobs {
    cells: Mutex<VecDeque<(String, Arc<Cell>)>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Jobs {
    /// Runs `work` as a job and returns it at once (running).
    pub fn spawn<F, Fut>(&self, kind: &str, target: &str, work: F) -> Job
    where
        F: FnOnce(Progress) -> Fut + Send + 'static,
        Fut: Future<Output = Result<serde_json::Value, ManagerError>> + Send + 'static,
    {
        let id = hex::encode(rand::random::<[u8; 8]>());
        let cell = Arc::new(Cell {
            job: Mutex::new(Job {
                id: id.clone(),
                kind: kind.to_string(),
                target: target.to_string(),
                state: JobState::Running,
                progress: JobProgress {
                    done: 0,
                    total: 0,
                    message: format!("{kind} {target}: queued"),
                },
                started_ms: now_ms(),
                finished_ms: None,
                elapsed_secs: 0.0,
                result: None,
                error: None,
                error_status: None,
            }),
            began: Instant::now(),
        });
        {
            let mut cells = self.cells.lock();
            cells.push_back((id.clone(), cell.clone()));
            // Drop the oldest finished jobs past KEEP; running ones stay.
            while cells.len() > KEEP {
                let Some(pos) = cells
                    .iter()
                    .position(|(_, c)| c.job.lock().state != JobState::Running)
                else {
                    break;
                };
                cells.remove(pos);
            }
        }
        let view = cell.view();
        let progress = Progress(Some(cell.clone()));
        tokio::spawn(async move {
            // The work runs in a task of its own so a panic in it fails the job instead of
            // leaving it running for ever.
            let r = tokio::spawn(work(progress)).await;
            let mut j = cell.job.lock();
            j.finished_ms = Some(now_ms());
            j.elapsed_secs = cell.began.elapsed().as_secs_f64();
            match r {
                Ok(Ok(v)) => {
                    j.state = JobState::Succeeded;
                    j.result = Some(v);
                    tracing::info!(job = %j.id, kind = %j.kind, target = %j.target, secs = j.elapsed_secs, "job done");
                }
                Ok(Err(e)) => {
                    j.state = JobState::Failed;
                    j.error_status = Some(e.status());
                    j.error = Some(e.to_string());
                    tracing::warn!(job = %j.id, kind = %j.kind, target = %j.target, "job failed: {e}");
                }
                Err(e) => {
                    j.state = JobState::Failed;
                    j.error_status = Some(500);
                    j.error = Some(format!("the job ended abnormally: {e}"));
                    tracing::error!(job = %j.id, kind = %j.kind, target = %j.target, "job ended abnormally: {e}");
                }
            }
        });
        view
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.cells
            .lock()
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, c)| c.view())
    }

    /// Every kept job, newest first.
    pub fn list(&self) -> Vec<Job> {
        self.cells
            .lock()
            .iter()
            .rev()
            .map(|(_, c)| c.view())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_reports_progress_then_its_result_or_error() {
        let jobs = Jobs::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let j = jobs.spawn("volume start", "v", |p| async move {
            p.set(1, 4, "1/4 bricks online");
            let _ = rx.await;
            Ok(serde_json::json!({"ok": true}))
        });
        assert_eq!(j.state, JobState::Running);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = jobs.get(&j.id).unwrap();
        assert_eq!((now.progress.done, now.progress.total), (1, 4));
        assert_eq!(now.state, JobState::Running);
        tx.send(()).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let done = jobs.get(&j.id).unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!(done.result.unwrap()["ok"], true);
        assert!(done.finished_ms.is_some());

        let f = jobs.spawn("volume heal", "w", |_| async move {
            Err(ManagerError::NotStarted("w".into()))
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let failed = jobs.get(&f.id).unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.error_status, Some(409));
        assert_eq!(jobs.list()[0].id, f.id);
        assert!(jobs.get("nope").is_none());
    }
}
