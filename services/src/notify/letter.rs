//! The apology letter for `APOLOGY_REQUIRED` (form 04, "Phiếu xin lỗi và hẹn lại ngày trả
//! kết quả", Circular 01/2018/TT-VPCP and its successor 03/2025/TT-VPCP), rendered as text and
//! HTML for the department at fault to complete and sign.
//!
//! A raised event does not carry the applicant's name, the reason the department gives, or
//! the new appointment it proposes (that comes back later as ApologyIssued): the letter
//! leaves dotted blanks, marked for the one-stop desk or the department to fill.

use chrono::{FixedOffset, TimeZone};
use dunghan_core::Catalog;
use dunghan_proto::v1::SlaEvent;
use serde::Serialize;

use super::directory::Directory;

/// Title of the form.
pub(crate) const TITLE: &str = "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ";
/// The blank for the applicant's name (not in any raised event).
pub(crate) const APPLICANT_BLANK: &str =
    "…………………………… (họ tên người nộp hồ sơ — Bộ phận Một cửa điền)";
/// The blank for the reason of the delay.
pub(crate) const REASON_BLANK: &str = "…………………………… (lý do chậm trễ — phòng điền)";
/// The blank for the new appointment.
pub(crate) const APPOINTMENT_BLANK: &str =
    "…… giờ …… ngày …… tháng …… năm …… (phòng đề xuất; chỉ được hẹn lại một lần)";

/// A rendered letter.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Letter {
    pub(crate) title: &'static str,
    pub(crate) text: String,
    pub(crate) html: String,
    /// What the letter leaves blank, for the desk's form.
    pub(crate) blanks: Vec<&'static str>,
}

fn vietnam() -> FixedOffset {
    // Asia/Ho_Chi_Minh has had a fixed UTC+7 since 1975.
    FixedOffset::east_opt(7 * 3600).expect("UTC+7 is a valid offset")
}

fn local(
    ts: Option<&dunghan_proto::pbjson_types::Timestamp>,
) -> Option<chrono::DateTime<FixedOffset>> {
    ts.and_then(|t| vietnam().timestamp_opt(t.seconds, 0).single())
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The fields of the letter, in Vietnamese.
struct Fields {
    agency: String,
    department: String,
    dossier: String,
    procedure: String,
    due: String,
    place_date: String,
    signer_title: String,
    signer_name: String,
}

fn fields(event: &SlaEvent, directory: &Directory, catalog: Option<&Catalog>) -> Fields {
    let raised = local(event.raised_at.as_ref());
    let procedure_name = catalog.and_then(|c| {
        let date = raised.map(|r| r.date_naive())?;
        c.lookup(&event.procedure_code, date)
            .ok()
            .map(|p| p.name.clone())
    });
    let procedure = match procedure_name {
        Some(name) => format!("{name} (mã {})", event.procedure_code),
        None => format!("mã {}", event.procedure_code),
    };
    let head = directory.head(&event.department_id);
    Fields {
        agency: directory.agency_name(&event.agency_id),
        department: if event.department_id.is_empty() {
            directory.agency_name(&event.agency_id)
        } else {
            directory.department_name(&event.department_id)
        },
        dossier: event.dossier_id.clone(),
        procedure,
        due: local(event.deadline.as_ref()).map_or_else(
            || "……".into(),
            |d| d.format("%H giờ %M ngày %d/%m/%Y").to_string(),
        ),
        place_date: raised.map_or_else(
            || "ngày …… tháng …… năm ……".into(),
            |d| d.format("ngày %d tháng %m năm %Y").to_string(),
        ),
        signer_title: head
            .map(|h| h.title.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "TRƯỞNG PHÒNG".into())
            .to_uppercase(),
        signer_name: head.map_or_else(|| "……………………".into(), |h| h.name.clone()),
    }
}

/// Renders the letter for an `APOLOGY_REQUIRED` event.
pub(crate) fn render(event: &SlaEvent, directory: &Directory, catalog: Option<&Catalog>) -> Letter {
    let f = fields(event, directory, catalog);
    let body = [
        format!("Kính gửi: {APPLICANT_BLANK}"),
        format!(
            "{} đã tiếp nhận hồ sơ số {} của Ông/Bà về thủ tục {}.",
            f.agency, f.dossier, f.procedure
        ),
        format!(
            "Thời hạn trả kết quả ghi trên Giấy tiếp nhận hồ sơ và hẹn trả kết quả là {}.",
            f.due
        ),
        format!(
            "Tuy nhiên, đến nay {} chưa giải quyết xong hồ sơ của Ông/Bà.",
            f.department
        ),
        format!("Lý do: {REASON_BLANK}."),
        format!(
            "Sự chậm trễ này đã gây phiền hà cho Ông/Bà. {} xin lỗi Ông/Bà và hẹn lại thời gian trả kết quả vào {APPOINTMENT_BLANK}.",
            f.department
        ),
        "Xin trân trọng cảm ơn./.".to_owned(),
    ];
    let text = format!(
        "{agency}\n{department}\n\nCỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc\n\n{place_date}\n\n{TITLE}\n\n{body}\n\n{signer_title}\n(Ký, ghi rõ họ tên)\n{signer_name}\n",
        agency = f.agency.to_uppercase(),
        department = f.department,
        place_date = f.place_date,
        body = body.join("\n"),
        signer_title = f.signer_title,
        signer_name = f.signer_name,
    );
    let paragraphs: String = body
        .iter()
        .map(|p| format!("  <p>{}</p>\n", html_escape(p)))
        .collect();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"vi\">\n<head><meta charset=\"utf-8\"><title>{TITLE}</title></head>\n<body>\n  <table style=\"width:100%\"><tr>\n    <td style=\"text-align:center\"><strong>{agency}</strong><br>{department}</td>\n    <td style=\"text-align:center\"><strong>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</strong><br><u>Độc lập - Tự do - Hạnh phúc</u><br><em>{place_date}</em></td>\n  </tr></table>\n  <h1 style=\"text-align:center;font-size:1.2em\">{TITLE}</h1>\n{paragraphs}  <p style=\"text-align:right\"><strong>{signer_title}</strong><br><em>(Ký, ghi rõ họ tên)</em><br>{signer_name}</p>\n</body>\n</html>\n",
        agency = html_escape(&f.agency.to_uppercase()),
        department = html_escape(&f.department),
        place_date = html_escape(&f.place_date),
        signer_title = html_escape(&f.signer_title),
        signer_name = html_escape(&f.signer_name),
    );
    Letter {
        title: TITLE,
        text,
        html,
        blanks: vec!["applicant", "reason", "new_appointment"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_names_the_dossier_procedure_department_and_due_date() {
        let directory = Directory::parse(
            r#"
[centre]
name = "Trung tâm"
director = { name = "GĐ" }
desk = { name = "Một cửa" }
[[agency]]
id = "so-vhtt"
name = "Sở Văn hóa, Thể thao và Du lịch"
leaders = [{ name = "PGĐ" }]
[[department]]
id = "phong-qlvh"
agency = "so-vhtt"
name = "Phòng Quản lý Văn hóa"
head = { name = "Nguyễn Văn A", title = "Trưởng phòng" }
"#,
        )
        .unwrap();
        let event = SlaEvent {
            dossier_id: "HS-001".into(),
            agency_id: "so-vhtt".into(),
            department_id: "phong-qlvh".into(),
            procedure_code: "2.000488".into(),
            // Fri 9/10/2026 10:00 and Mon 12/10/2026 10:00 at UTC+7.
            raised_at: Some(dunghan_proto::pbjson_types::Timestamp {
                seconds: 1_791_514_800,
                nanos: 0,
            }),
            deadline: Some(dunghan_proto::pbjson_types::Timestamp {
                seconds: 1_791_774_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        let letter = render(&event, &directory, None);
        for part in [
            TITLE,
            "SỞ VĂN HÓA, THỂ THAO VÀ DU LỊCH",
            "hồ sơ số HS-001",
            "thủ tục mã 2.000488",
            "10 giờ 00 ngày 12/10/2026",
            "ngày 09 tháng 10 năm 2026",
            "Phòng Quản lý Văn hóa xin lỗi Ông/Bà",
            APPLICANT_BLANK,
            "TRƯỞNG PHÒNG\n(Ký, ghi rõ họ tên)\nNguyễn Văn A",
        ] {
            assert!(letter.text.contains(part), "{part} in\n{}", letter.text);
        }
        assert!(letter
            .html
            .contains("<h1 style=\"text-align:center;font-size:1.2em\">PHIẾU XIN LỖI"));
        assert!(letter.html.contains("hồ sơ số HS-001"));
    }
}
