"""The settings reference page, made from dashboard/settings.py (name, default, help).

Nothing about a setting is written twice: its name, default and help come from
its declaration; what is kept here is only which tests show it working (the
old README's table named them; tests/test_readme_tables.py checks each exists) and
how a default that is computed at start reads on a page."""

from __future__ import annotations

from dashboard import settings

PAGE = "settings.md"

# A default computed on the machine at start reads as its rule, not as this
# machine's number (the page must be the same wherever it is made).
DEFAULT_SHOWN = {
    "WORKER_CONNECTIONS": "open-files limit − 256 − the kept stat files (see meaning)",
    "ALLOWED_HOSTS": "(automatic)",
    "OPERATOR_TOKEN": "(generated)",
    "SECRET_KEY": "(generated)",
    "AUDIT_DB": "(empty: `DATA_DIR/audit.sqlite3`)",
}

# The tests that show each setting doing what its help says.
TESTS: dict[str, tuple[str, ...]] = {
    "HOST": ("test_operability::test_allowed_hosts_defaults_follow_the_bind_address",),
    "PORT": ("test_restart_live::test_sigterm_with_1000_viewers_and_50_consoles",),
    "WEB_CONCURRENCY": (
        "test_stream_live::test_web_concurrency_above_one_without_a_store_runs_one_worker",
        "test_redis_live::test_two_workers_share_one_sampler_one_stream_and_pushes",
    ),
    "WORKER_CONNECTIONS": (
        "test_settings_live::test_worker_connections_is_the_most_one_worker_serves",
        "test_procfs::test_worker_connections_leave_room_for_the_kept_stat_files",
    ),
    "GRACEFUL_TIMEOUT": ("test_settings_live::test_graceful_timeout_bounds_how_long_a_worker_waits_after_sigterm",),
    "SAMPLE_INTERVAL": (
        "test_settings_live::test_sample_interval_is_the_cadence_at_start",
        "test_settings::test_bad_values_name_the_setting",
    ),
    "HISTORY_SECONDS": (
        "test_settings_live::test_history_seconds_bounds_what_history_serves",
        "test_hub::test_events_older_than_the_history_window_are_evicted",
    ),
    "RESUME_SECONDS": (
        "test_raw_hour_split::test_a_restart_charts_the_hour_from_minutes_and_resumes_from_whole_events",
        "test_raw_hour_split::test_the_store_keeps_whole_events_for_resume_seconds_and_chart_minutes_for_the_hour",
        "test_history_cache::test_a_full_hour_polled_by_six_clients_costs_one_encode_per_sample",
    ),
    "HEARTBEAT_SECONDS": ("test_stream_live::test_heartbeat_comments_keep_an_idle_stream_alive",),
    "SSE_RETRY_MS": ("test_settings_live::test_sse_retry_ms_is_the_retry_field_of_every_stream",),
    "VIEWER_BACKLOG": (
        "test_abuse_live::test_slow_readers_are_dropped_and_never_hold_up_the_others",
        "test_hub::test_a_slow_reader_is_dropped_without_delaying_others_or_growing_memory",
    ),
    "VIEWER_SEND_BUFFER": ("test_settings_live::test_viewer_send_buffer_sets_each_streams_kernel_buffer",),
    "VIEWER_WRITE_TIMEOUT": ("test_hub::test_a_stalled_write_is_dropped_after_the_write_timeout",),
    "TOP_PROCESSES": ("test_settings_live::test_top_processes_is_the_length_of_each_top_table",),
    "HOST_NAME": ("test_console_ops_live::test_hosts_lists_this_host_without_redis",),
    "LOG_LEVEL": ("test_settings_live::test_log_level_warning_leaves_out_the_apps_info_lines",),
    "LOG_FORMAT": (
        "test_settings_live::test_log_format_text_writes_plain_lines",
        "test_settings_live::test_log_format_json_is_one_object_per_line",
    ),
    "ALLOWED_HOSTS": (
        "test_operability::test_host_allowlist",
        "test_operability::test_dns_rebinding_gets_400",
    ),
    "FORWARDED_ALLOW_IPS": ("test_operability::test_forwarding_headers_only_from_trusted_proxies",),
    "DASHBOARD_ACCESS": (
        "test_auth::test_public_access_opens_the_dashboard_but_not_the_console",
        "test_auth::test_anonymous_visitor_gets_the_login_form_and_nothing_of_the_host",
    ),
    "OPERATOR_TOKEN": (
        "test_console_live::test_without_a_token_one_is_generated_and_a_login_url_printed_once",
        "test_kept_secrets::test_a_restart_keeps_the_generated_token_and_cookies_and_deleting_the_file_rotates_them",
        "test_access_live::test_bad_credentials_stop_the_start_with_one_line",
    ),
    "OBSERVER_TOKEN": ("test_auth::test_observer_token_gets_the_observer_role",),
    "VIEWER_TOKEN": ("test_auth::test_access_matrix_by_bearer",),
    "OPERATOR_TOKENS": ("test_auth::test_a_named_token_names_its_holder_whatever_is_claimed",),
    "OBSERVER_TOKENS": ("test_settings_live::test_observer_tokens_log_in_named_observers",),
    "VIEWER_TOKENS": (
        "test_settings_live::test_viewer_tokens_open_the_dashboards_and_not_the_console",
        "test_access_live::test_bad_credentials_stop_the_start_with_one_line",
    ),
    "METRICS_TOKEN": (
        "test_auth::test_metrics_token_cannot_log_in",
        "test_auth::test_access_matrix_by_bearer",
    ),
    "CONTAINERS": ("test_containers::test_containers_off_and_no_cgroups_are_reported_missing_not_errors",
                   "test_containers_live::test_the_collector_reads_each_containers_limits_and_use_and_the_engine_names_them"),
    "CONTAINER_SOCKET": ("test_containers::test_the_engine_socket_is_the_setting_then_docker_host_then_the_defaults",),
    "NET_EXCLUDE": ("test_collectors::test_net_totals_count_the_nics_once_and_veth_ends_are_left_out",
                    "test_collectors::test_net_exclude_is_read_from_the_environment_and_reaches_the_sampler"),
    "CONTAINERS_SHOWN": ("test_containers::test_the_table_holds_containers_shown_at_most_the_heaviest_and_the_count_all",),
    "DRAIN_SECONDS": ('test_leaving::test_a_drain_ends_each_at_its_moment_and_a_cut_ends_the_rest_at_once', 'test_leaving_live::test_sigterm_drains_streams_and_consoles_spread_over_the_window',),
    "KEEPALIVE_SECONDS": ('test_leaving_live::test_idle_kept_alive_connections_last_past_the_routers_90_s_and_never_hold_a_leaving_worker',),
    "STREAM_MAX_SECONDS": ('test_leaving::test_streams_are_rotated_each_at_its_own_time_within_the_last_tenth_of_the_limit', 'test_leaving_live::test_streams_end_by_themselves_before_a_proxy_would_and_resume_with_no_gap',),
    "STREAM_OPENS_PER_SECOND": ('test_leaving::test_admission_lets_a_burst_in_then_its_rate_and_tells_the_rest_to_come_back_spread_out', 'test_leaving_live::test_a_storm_of_new_streams_is_let_in_at_the_set_rate_and_the_rest_come_back_by_themselves',),
    "DATA_DIR_LASTS": ('test_state_place::test_elsewhere_a_mounted_volume_is_recognised_by_its_device', 'test_state_place::test_the_warning_appears_exactly_when_state_will_not_last',),
    "HOST_BUDGET_BYTES": ("test_host_budget::test_a_host_over_its_budget_is_trimmed_from_its_oldest_data",
                          "test_host_budget::test_the_writer_keeps_each_host_inside_its_budget"),
    "LOGIN_FAILURES_ALLOWED": ("test_access_live::test_guessing_is_throttled_and_the_right_token_works_after_the_wait",),
    "LOGIN_FAILURES_PER_MINUTE": (
        "test_auth::test_failures_from_all_addresses_past_the_minute_ceiling_stop_everyone_until_it_ends",
        "test_proxy_trust_live::test_failed_logins_from_many_addresses_stop_every_address_for_the_minute",
    ),
    "SECRET_KEY": (
        "test_restart_live::test_a_cookie_revoked_by_logout_stays_refused_after_a_restart",
        "test_kept_secrets::test_a_restart_keeps_the_generated_token_and_cookies_and_deleting_the_file_rotates_them",
        "test_access_live::test_bad_credentials_stop_the_start_with_one_line",
    ),
    "SESSION_HOURS": ("test_settings_live::test_session_hours_is_how_long_a_login_lasts",),
    "ALLOWED_ORIGINS": ("test_console_live::test_auth_and_origin_matrix",),
    "ALLOW_PROCESS_CONTROL": (
        "test_console_live::test_kill_with_confirmation_against_a_real_process",
        "test_commands::test_kill_is_off_unless_enabled",
    ),
    "AUDIT_DB": (
        "test_console_live::test_audit_records_survive_a_restart_and_a_kill_9",
        "test_audit_location::test_the_real_server_keeps_its_audit_log_in_data_dir",
    ),
    "AUDIT_SYNC": ("test_audit::test_full_sync_is_a_setting",),
    "DATA_DIR": (
        "test_notify_live::test_a_pending_message_survives_a_restart_of_the_app",
        "test_audit_location::test_the_app_writes_its_audit_log_under_data_dir",
    ),
    "NOTIFY_URLS": ("test_notify_live::test_firing_and_resolved_reach_a_webhook_and_a_mailbox_once_each_with_the_evidence",),
    "NOTIFY_GROUP_SECONDS": ("test_notify_live::test_a_burst_of_flapping_becomes_one_message",),
    "NOTIFY_RETRY_HOURS": ("test_notify::test_the_loop_groups_retries_and_gives_up",),
    "NOTIFY_TIMEOUT": ("test_notify_live::test_a_receiver_that_never_answers_times_out_and_holds_up_no_one",),
    "NOTIFY_ALLOW_PRIVATE": (
        "test_egress::test_private_addresses_follow_the_switch_and_public_ones_pass",
        "test_egress::test_the_setting_reaches_the_check",
    ),
    "NOTIFY_DENY_NETWORKS": ("test_egress_live::test_url_forms_that_parsers_disagree_on_never_reach_a_forbidden_receiver",),
    "NOTIFY_RAW_SCHEMES": ("test_egress::test_schemes_by_allowlist_raw_socket_ones_only_when_named",),
    "MAX_NOTIFY_CHANNELS": (
        "test_egress::test_the_channel_and_silence_past_the_limit_are_refused_with_bad_args",
        "test_egress::test_the_redis_limits_hold_when_writers_race",
    ),
    "MAX_SILENCES": (
        "test_egress::test_the_channel_and_silence_past_the_limit_are_refused_with_bad_args",
        "test_egress::test_the_redis_limits_hold_when_writers_race",
    ),
    "PUBLIC_URL": ("test_notify_live::test_firing_and_resolved_reach_a_webhook_and_a_mailbox_once_each_with_the_evidence",),
    "HISTORY_STORE": (
        "test_lasting::test_history_store_off_keeps_nothing",
        "test_lasting_live::test_a_restart_is_invisible_to_viewers_and_operators",
    ),
    "MINUTE_HISTORY_DAYS": (
        "test_lasting::test_old_points_are_trimmed_by_age",
        "test_lasting::test_reach_is_how_far_back_the_data_goes",
    ),
    "HOUR_HISTORY_DAYS": (
        "test_lasting::test_old_points_are_trimmed_by_age",
        "test_lasting::test_reach_is_how_far_back_the_data_goes",
    ),
    "CONSOLE_RATE": ("test_console_live::test_a_flood_gets_rate_limited_then_closed_1008",),
    "CONSOLE_BURST": ("test_console_live::test_a_flood_gets_rate_limited_then_closed_1008",),
    "CONSOLE_OUTBOX": ("test_console_ops_live::test_a_console_that_stops_reading_is_closed_1008_and_pushes_to_others_never_wait",),
    "CONSOLE_MAX_MESSAGE": ("test_console_ops_live::test_console_max_message_is_the_limit_that_closes_with_1009",),
    "CONSOLE_PING_SECONDS": ("test_abuse_live::test_each_abuse_ends_as_documented_and_leaks_nothing",),
    "MAX_BODY_BYTES": (
        "test_limits_live::test_slow_and_oversized_bodies_are_cut_while_a_viewer_and_health_carry_on",
        "test_body_limits::test_a_chunked_body_is_cut_once_it_passes_the_cap",
    ),
    "BODY_TIMEOUT_SECONDS": (
        "test_limits_live::test_slow_and_oversized_bodies_are_cut_while_a_viewer_and_health_carry_on",
        "test_body_limits::test_one_deadline_for_the_whole_body_not_per_read",
    ),
    "MAX_CONNECTIONS_PER_CLIENT": (
        "test_limits_live::test_one_address_holding_its_budget_cannot_starve_another",
        "test_console_limits_live::test_console_sockets_count_against_the_address_budget",
    ),
    "MAX_CONSOLES_PER_LOGIN": ("test_console_limits_live::test_consoles_per_login_are_capped_with_429_and_retry_after",),
    "CONSOLE_LOGIN_RATE": ("test_console_limits_live::test_the_login_rate_limit_survives_reconnects",),
    "CONSOLE_LOGIN_BURST": ("test_console_limits_live::test_the_login_rate_limit_survives_reconnects",),
    "HISTORY_BUILDS_PER_MINUTE": ("test_history_limits_live::test_a_login_over_its_history_budget_gets_429_with_retry_after",),
    "MAX_ALERT_RULES": (
        "test_bounded_state::test_alert_rules_stop_at_max_alert_rules_with_bad_args",
        "test_audit_upkeep_live::test_the_alert_rule_limit_holds_across_dynos_on_redis",
    ),
    "AUDIT_RETENTION_DAYS": (
        "test_bounded_state::test_sqlite_retention_trims_old_records_only",
        "test_bounded_state::test_redis_retention_trims_the_stream_by_age",
    ),
    "AUDIT_SUMMARY_SECONDS": (
        "test_bounded_state::test_repeated_read_only_requests_are_counted_not_stored_one_row_each",
        "test_bounded_state::test_the_summary_window_runs_by_itself",
    ),
    "REDIS_URL": ("test_redis_live::test_two_workers_share_one_sampler_one_stream_and_pushes",),
    "REDIS_PREFIX": ("test_settings_live::test_redis_prefix_names_every_key",),
    "REDIS_TLS_VERIFY": ("test_redis_live::test_rediss_tls_urls_work",),
    "SAMPLER_LEASE_SECONDS": ("test_redis_live::test_the_sampler_moves_when_its_worker_is_killed",),
    "HOST_STALE_SECONDS": ("test_redis_live::test_an_agent_publishes_another_host",),
}

INTRO = """\
# Settings

Every setting is an environment variable, declared once in
`dashboard/settings.py` with its default and help. This page is made from
there (`python -m docsgen`; a test fails when it is out of date), so the
meaning below is the same text the code carries.

Each setting is checked before the server starts: a value that cannot be used
stops gunicorn with one line naming the setting, the value and what is
allowed, and exit code 2, for example
`error: PORT='abc': must be a whole number between 1 and 65535` or
`error: DATA_DIR='/srv/ro': must be a path this server can create and write; read-only file system`.
Warnings at start (one worker without Redis, generated tokens with Redis, state
that will not last) are log lines like any other, in `LOG_FORMAT`.

Where they are explained at length: tokens and roles in
[Who sees what](access.md), `DATA_DIR` and what survives a restart in
[Lasting state](lasting-state.md), `REDIS_URL` and the lease in
[Scaling out](scaling.md), the limits in [Faults and abuse](faults.md).

| name | default | meaning | test |
|---|---|---|---|
"""


def default_shown(setting: settings.Setting) -> str:
    if setting.name in DEFAULT_SHOWN:
        return DEFAULT_SHOWN[setting.name]
    value = setting.default
    if isinstance(value, bool):
        return f"`{int(value)}`"
    if value in ("", ()):
        return "(empty)"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    rows = []
    for s in settings.SETTINGS:
        tests = ", ".join(f"`{t}`" for t in TESTS.get(s.name, ())) or "(none named)"
        rows.append(f"| `{s.name}` | {_cell(default_shown(s))} | {_cell(s.help)} | {tests} |")
    return INTRO + "\n".join(rows) + "\n"
