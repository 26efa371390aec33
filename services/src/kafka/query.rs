//! What an instance answers in Kafka mode about the partitions it owns: a dossier's
//! timeline (its history replayed on a scratch engine), open dossiers, rates; and
//! `Publish`, which writes events to the input topic for their partition's owner.

use std::sync::Arc;

use dunghan_core::{OpenDossier, Raised};
use dunghan_proto::v1::{DossierEvent, EventResult, PublishStatus, RateDimension, Rates, SlaEvent};
use prost::Message as _;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::codec;
use super::history::History;
use super::io;
use super::partition::apply_history;
use super::runtime::{lock, Shared};
use crate::convert::to_sla_event;
use crate::serve::node::{wall_clock, OpenFilter};

/// The queryable side of a Kafka-mode instance.
pub(crate) struct KafkaNode {
    pub(crate) shared: Arc<Shared>,
    publisher: FutureProducer,
}

impl std::fmt::Debug for KafkaNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaNode").finish_non_exhaustive()
    }
}

type Histories = Vec<(Arc<str>, History, i64)>;

impl KafkaNode {
    pub(crate) fn new(shared: Arc<Shared>) -> anyhow::Result<KafkaNode> {
        let c = io::settings(&shared.cfg, &[], &[("acks", "all")]);
        Ok(KafkaNode {
            publisher: c.create()?,
            shared,
        })
    }

    /// Writes events to the input topic, keyed by dossier id, in protobuf; `QUEUED` each
    /// (an event without a dossier id is `REJECTED`: it has no partition).
    pub(crate) async fn publish(&self, events: Vec<DossierEvent>) -> Vec<EventResult> {
        // Enqueue the whole batch first, then wait for every delivery.
        let mut pending = Vec::with_capacity(events.len());
        for event in &events {
            if event.dossier_id.is_empty() {
                pending.push(Err("dossier_id: is required".to_owned()));
                continue;
            }
            let payload = event.encode_to_vec();
            let headers = OwnedHeaders::new().insert(Header {
                key: codec::CONTENT_TYPE,
                value: Some(codec::PROTOBUF),
            });
            let record = FutureRecord::to(&self.shared.cfg.input_topic)
                .key(event.dossier_id.as_str())
                .payload(payload.as_slice())
                .headers(headers);
            pending.push(
                self.publisher
                    .send_result(record)
                    .map_err(|(e, _)| format!("not written to Kafka: {e}")),
            );
        }
        let mut results = Vec::with_capacity(events.len());
        for (event, sent) in events.into_iter().zip(pending) {
            let outcome = match sent {
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(format!("not written to Kafka: {e}")),
                    Err(_) => Err("not written to Kafka: the producer stopped".to_owned()),
                },
                Err(why) => Err(why),
            };
            let (status, reason) = match outcome {
                Ok(()) => (PublishStatus::Queued, String::new()),
                Err(why) => (PublishStatus::Rejected, why),
            };
            results.push(EventResult {
                event_id: event.event_id,
                status: status as i32,
                reason,
                raised: Vec::new(),
            });
        }
        results
    }

    /// Histories (with their partition's stream time) of the dossiers matching `which`.
    fn histories(&self, which: Option<&str>) -> Histories {
        let parts = self.shared.partitions();
        let mut out = Vec::new();
        for p in parts.values() {
            let p = lock(p);
            match which {
                Some(id) => {
                    if let Some(h) = p.history(id) {
                        out.push((Arc::from(id), h, p.stream_time));
                    }
                }
                None => out.extend(
                    p.histories()
                        .into_iter()
                        .map(|(id, h)| (id, h, p.stream_time)),
                ),
            }
        }
        out
    }

    /// Events and raised events of the given histories, replayed on a scratch engine.
    fn replay(&self, histories: Histories) -> anyhow::Result<(Vec<DossierEvent>, Vec<SlaEvent>)> {
        let mut engine = (self.shared.factory)();
        let (mut events, mut raised) = (Vec::new(), Vec::<Raised>::new());
        for (id, history, stream_time) in histories {
            apply_history(&mut engine, &id, &history, &mut raised, Some(&mut events))?;
            engine.advance_dossier(&id, stream_time, &mut raised);
        }
        Ok((events, raised.iter().map(to_sla_event).collect()))
    }

    /// A dossier's events and raised events, if one of this instance's partitions has it.
    pub(crate) fn timeline(
        &self,
        dossier: &str,
    ) -> anyhow::Result<(Vec<DossierEvent>, Vec<SlaEvent>)> {
        self.replay(self.histories(Some(dossier)))
    }

    /// Open dossiers of the owned partitions matching `filter`.
    pub(crate) fn open_dossiers(&self, filter: &OpenFilter<'_>) -> (Vec<OpenDossier>, bool) {
        let now = wall_clock();
        let parts = self.shared.partitions();
        filter.page(
            parts
                .values()
                .flat_map(|p| lock(p).engine().open_dossiers_at(now).collect::<Vec<_>>()),
        )
    }

    /// Rates over `[from, to)` for the dossiers this instance holds.
    pub(crate) fn rates(
        &self,
        from: i64,
        to: i64,
        by: RateDimension,
    ) -> anyhow::Result<(Vec<Rates>, Rates)> {
        let (events, raised) = self.replay(self.histories(None))?;
        Ok(crate::serve::rates::compute(&events, &raised, from, to, by))
    }
}
