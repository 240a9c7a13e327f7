//! The OpenAPI 3.0 document served at `/openapi.json`: exactly the routes of
//! [`super::api`] and the shapes of [`super::views`] (schemathesis checks every
//! response against it in `leader/tests/serve.rs`).

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn job_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}})
}

fn job_id_parameter() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": "The job id returned by POST /v1/jobs.",
        "schema": {"type": "string", "example": "job-6752c1f0-1a2b3c4d"}
    })
}

fn nullable_number() -> Value {
    json!({"type": "number", "nullable": true})
}

fn nullable_time() -> Value {
    json!({"type": "string", "format": "date-time", "nullable": true})
}

fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn schemas() -> Value {
    let codes: Vec<&str> = super::api::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let states: Vec<&str> = super::state::JobState::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "Error": {
            "type": "object", "required": ["error"], "additionalProperties": false,
            "properties": {"error": {
                "type": "object", "required": ["code", "message"], "additionalProperties": false,
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string"}
                }
            }}
        },
        "Job": {
            "type": "object",
            "additionalProperties": false,
            "required": ["id", "state", "client", "plugin", "name", "summary", "progress", "timings",
                         "error", "proof", "stats", "links"],
            "properties": {
                "id": {"type": "string"},
                "state": {"type": "string", "enum": states},
                "client": {"type": "string"},
                "plugin": {"type": "string", "description": "name@version of the proof system"},
                "name": {"type": "string", "description": "what is proven, e.g. <block number>-<hash prefix>"},
                "summary": {"type": "string"},
                "progress": {
                    "type": "object", "additionalProperties": false,
                    "required": ["segments_done", "segments_total", "aggregations_done", "aggregations_total",
                                 "cost_done", "cost_total"],
                    "properties": {
                        "segments_done": count(), "segments_total": count(),
                        "aggregations_done": count(), "aggregations_total": count(),
                        "cost_done": count(), "cost_total": count()
                    }
                },
                "timings": {
                    "type": "object", "additionalProperties": false,
                    "required": ["submitted", "started", "finished", "queued_seconds", "elapsed_seconds"],
                    "properties": {
                        "submitted": {"type": "string", "format": "date-time"},
                        "started": nullable_time(),
                        "finished": nullable_time(),
                        "queued_seconds": {"type": "number", "minimum": 0},
                        "elapsed_seconds": nullable_number()
                    }
                },
                "error": {"type": "string", "nullable": true, "description": "why it failed"},
                "proof": {
                    "type": "object", "nullable": true, "additionalProperties": false,
                    "required": ["bytes", "blake3"],
                    "properties": {"bytes": count(), "blake3": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}
                },
                "stats": {
                    "type": "object", "nullable": true, "additionalProperties": false,
                    "required": ["segments", "aggregations", "retries", "redispatches", "timeouts", "repairs",
                                 "resumed_segments"],
                    "properties": {
                        "segments": count(), "aggregations": count(), "retries": count(),
                        "redispatches": count(), "timeouts": count(), "repairs": count(),
                        "resumed_segments": count()
                    }
                },
                "links": {
                    "type": "object", "additionalProperties": false,
                    "required": ["self", "proof", "timeline"],
                    "properties": {"self": {"type": "string"}, "proof": {"type": "string"}, "timeline": {"type": "string"}}
                }
            }
        },
        "JobList": {
            "type": "object", "required": ["jobs"], "additionalProperties": false,
            "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}}
        },
        "Status": {
            "type": "object", "required": ["status"], "additionalProperties": false,
            "properties": {"status": {"type": "string"}}
        }
    })
}

/// The document.
pub fn document() -> Value {
    let auth = json!([{"bearer": []}]);
    let unauthorized = error_response("Missing or wrong bearer token (only when the service has one).");
    let not_found = error_response("No such job (never submitted, deleted, or expired).");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Proofline proving service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Submit blocks, follow their jobs, download proofs (proofline-leader serve)."
        },
        "paths": {
            "/v1/jobs": {
                "post": {
                    "operationId": "submitJob",
                    "summary": "Submit a block (with its execution witness) to prove",
                    "security": auth,
                    "parameters": [
                        {"name": "X-Proofline-Client", "in": "header", "required": false,
                         "description": "Who the job is for (fair share by --client-weight).",
                         "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}},
                        {"name": "client", "in": "query", "required": false,
                         "description": "Same as X-Proofline-Client, which wins when both are given.",
                         "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}}
                    ],
                    "requestBody": {
                        "required": true,
                        "description": "The block input, in any format `proofline-leader stdio` reads.",
                        "content": {
                            "application/json": {"schema": {}},
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                        }
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted: recorded durably and queued.",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}
                        },
                        "400": error_response("Bad input: the same message `stdio` prints for exit 2."),
                        "401": unauthorized,
                        "413": error_response("The body is larger than --max-input-mib."),
                        "429": {
                            "description": "The queue is full (--max-queued).",
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                        },
                        "500": error_response("The job could not be recorded (artifact store)."),
                        "503": error_response("The service is stopping.")
                    }
                },
                "get": {
                    "operationId": "listJobs",
                    "summary": "List jobs, newest first",
                    "security": auth,
                    "parameters": [
                        {"name": "limit", "in": "query", "required": false,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                        {"name": "state", "in": "query", "required": false,
                         "schema": {"type": "string", "enum": super::state::JobState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()}}
                    ],
                    "responses": {
                        "200": {"description": "The jobs.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobList"}}}},
                        "400": error_response("A bad limit or state."),
                        "401": unauthorized
                    }
                }
            },
            "/v1/jobs/{id}": {
                "parameters": [job_id_parameter()],
                "get": {
                    "operationId": "getJob",
                    "summary": "A job's state, progress, timings and error",
                    "security": auth,
                    "responses": {"200": job_response("The job."), "401": unauthorized, "404": not_found}
                },
                "delete": {
                    "operationId": "deleteJob",
                    "summary": "Cancel a queued or running job; delete a finished one and its proof",
                    "security": auth,
                    "responses": {
                        "200": job_response("Cancelled (it was queued or running)."),
                        "204": {"description": "Deleted (it was finished), with its proof."},
                        "401": unauthorized,
                        "404": not_found,
                        "500": error_response("The artifact store refused the change.")
                    }
                }
            },
            "/v1/jobs/{id}/proof": {
                "parameters": [job_id_parameter()],
                "get": {
                    "operationId": "getProof",
                    "summary": "The proof file (check it with `proofline-leader verify FILE`)",
                    "security": auth,
                    "responses": {
                        "200": {"description": "The proof file.",
                                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                        "401": unauthorized,
                        "404": not_found,
                        "409": error_response("The job is not proven (yet)."),
                        "500": error_response("The proof could not be read from the artifact store.")
                    }
                }
            },
            "/v1/jobs/{id}/timeline.svg": {
                "parameters": [job_id_parameter()],
                "get": {
                    "operationId": "getTimeline",
                    "summary": "Where the job's time went: one row per lane, one bar per task attempt",
                    "security": auth,
                    "responses": {
                        "200": {"description": "An SVG picture.", "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                        "401": unauthorized,
                        "404": not_found,
                        "409": error_response("No timeline (yet): the job is queued or running, or it ended without one."),
                        "500": error_response("The timeline could not be read or drawn.")
                    }
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text exposition (jobs by state, tasks, outstanding work, store, ...)",
                    "security": auth,
                    "responses": {
                        "200": {"description": "Metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                        "401": unauthorized
                    }
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {"type": "object"}}}}}
                }
            },
            "/livez": {
                "get": {
                    "operationId": "livez", "summary": "Liveness probe", "security": [],
                    "responses": {"200": {"description": "Live.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}}
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz", "summary": "Readiness probe: 503 while starting or stopping", "security": [],
                    "responses": {
                        "200": {"description": "Ready.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
                        "503": error_response("Starting (restoring jobs) or stopping.")
                    }
                }
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "--api-token / PROOFLINE_API_TOKEN; without one, the API is open (loopback only)."}},
            "schemas": schemas()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves_and_every_route_is_documented() {
        let doc = document();
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
        for path in [
            "/v1/jobs",
            "/v1/jobs/{id}",
            "/v1/jobs/{id}/proof",
            "/v1/jobs/{id}/timeline.svg",
            "/metrics",
            "/openapi.json",
            "/livez",
            "/readyz",
        ] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
    }

    #[test]
    fn served_views_match_the_job_schema_keys() {
        use crate::serve::registry::JobRecord;
        use proofline_runtime::plugin::Plan;
        let plan =
            Plan { segments: vec![].into(), meta: vec![], summary: String::new(), name: String::new() };
        let input = proofline_runtime::task::ArtifactRef { uri: "mem:x".into(), blake3: [0; 32], len: 0 };
        let record = JobRecord::new("job-1-00000000".into(), "c".into(), 1, 1, "p@1".into(), &plan, input);
        let view = crate::serve::views::job(&crate::serve::service::Snapshot { record, progress: None }, 5);
        let schema = &document()["components"]["schemas"]["Job"];
        let mut served: Vec<&String> = view.as_object().unwrap().keys().collect();
        let mut documented: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        served.sort();
        documented.sort();
        assert_eq!(served, documented);
        for key in ["progress", "timings", "links"] {
            let mut a: Vec<&String> = view[key].as_object().unwrap().keys().collect();
            let mut b: Vec<&String> =
                schema["properties"][key]["properties"].as_object().unwrap().keys().collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{key}");
        }
    }
}
