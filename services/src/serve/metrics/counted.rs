//! What the SLA metrics read of a raised event, in either of its forms: the wire form
//! (`SlaEvent`, embedded mode) or the engine's (`Raised`, Kafka mode, which encodes its
//! records without building the wire form).

use dunghan_core::Raised;
use dunghan_proto::v1::{Channel, Outcome, SlaEvent, SlaEventKind};

use crate::convert::{sla_channel, sla_kind, sla_outcome};

/// A raised event as the metrics count it.
pub(crate) trait Counted {
    fn kind(&self) -> SlaEventKind;
    fn level(&self) -> u32;
    fn channel(&self) -> Channel;
    fn outcome(&self) -> Outcome;
    fn agency_id(&self) -> &str;
    fn department_id(&self) -> &str;
    fn step_id(&self) -> &str;
    fn procedure_code(&self) -> &str;
    fn field(&self) -> &str;
}

/// The accessors both forms share: fields of the same name and meaning (`Arc<str>` in
/// one, `String` in the other).
macro_rules! same_fields {
    () => {
        fn level(&self) -> u32 {
            self.level
        }
        fn agency_id(&self) -> &str {
            &self.agency_id
        }
        fn department_id(&self) -> &str {
            &self.department_id
        }
        fn step_id(&self) -> &str {
            &self.step_id
        }
        fn procedure_code(&self) -> &str {
            &self.procedure_code
        }
        fn field(&self) -> &str {
            &self.field
        }
    };
}

impl Counted for SlaEvent {
    fn kind(&self) -> SlaEventKind {
        SlaEvent::kind(self)
    }
    fn channel(&self) -> Channel {
        SlaEvent::channel(self)
    }
    fn outcome(&self) -> Outcome {
        SlaEvent::outcome(self)
    }
    same_fields!();
}

impl Counted for Raised {
    fn kind(&self) -> SlaEventKind {
        sla_kind(Raised::kind(self))
    }
    fn channel(&self) -> Channel {
        sla_channel(self.channel)
    }
    fn outcome(&self) -> Outcome {
        sla_outcome(self.outcome)
    }
    same_fields!();
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use crate::convert::to_sla_event;

    #[test]
    fn either_form_of_a_raised_event_counts_alike() {
        let raised = crate::kafka::scenario_raised();
        let wire: Vec<_> = raised.iter().map(to_sla_event).collect();
        let (engine_form, wire_form) = (Metrics::new().unwrap(), Metrics::new().unwrap());
        engine_form.observe(&raised);
        wire_form.observe(&wire);
        let text = engine_form.render();
        assert_eq!(text, wire_form.render());
        for series in [
            "dunghan_raised_events_total",
            "dunghan_dossiers_received_total",
        ] {
            assert!(text.contains(series), "{series} counted:\n{text}");
        }
    }
}
