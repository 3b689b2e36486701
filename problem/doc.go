// Package problem writes RFC 9457 problem details: the application/problem+json
// error bodies that every pier package answers with.
//
// Every error a pier Service, its health endpoints, load shedding, token
// verification and the gateway write goes through [Write], so clients parse one
// shape everywhere:
//
//	{"title":"Not Found","status":404,"detail":"no user 42",
//	 "request_id":"4bf92f3577b34da6a3ce929d0e0e4736","trace_id":"..."}
//
// Handlers write their own the same way:
//
//	problem.Write(w, r, problem.Problem{Status: http.StatusConflict, Detail: "email taken"})
//
// A *Problem is also an error, so a function can return one and an HTTP
// handler can match it with errors.As and write it.
//
// The package imports only the standard library, so leaf packages can depend
// on it without pulling in a server or OpenTelemetry. Inside a pier Service the
// request and trace IDs are filled from what the Service recorded for the
// request; elsewhere they are left empty unless set.
package problem
