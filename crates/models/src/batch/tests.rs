use super::*;

#[test]
fn error_types_map_to_errors_that_say_whether_to_resubmit() {
    for (kind, again) in [
        ("overloaded_error", true),
        ("api_error", true),
        ("rate_limit_error", true),
        ("invalid_request_error", false),
        ("authentication_error", false),
        ("something_new", false),
    ] {
        let e = error_of_type(kind, "m".into());
        assert_eq!(resubmittable(&e), again, "{kind}: {e}");
    }
    assert!(resubmittable(&ModelError::Expired("x".into())));
    assert!(!resubmittable(&ModelError::Canceled("x".into())));
}

#[test]
fn jsonl_skips_blank_lines_and_names_bad_ones() {
    let v = jsonl("{\"a\":1}\n\n{\"a\":2}\n", "f").unwrap();
    assert_eq!(v.len(), 2);
    let e = jsonl("{\"a\":1}\n{oops\n", "results")
        .unwrap_err()
        .to_string();
    assert!(e.contains("results, line 2"), "{e}");
}
