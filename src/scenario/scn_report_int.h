/* Private to the scenario reports (scn_report.c, scn_html.c, scn_demo.c): pieces the demo's
 * combined report reuses. */
#ifndef VX_SCENARIO_SCN_REPORT_INT_H
#define VX_SCENARIO_SCN_REPORT_INT_H

#include <jansson.h>

#include "scenario/scenario.h"

/* The run's JSON document as a jansson object (the caller owns the reference). */
json_t *scn_report_json_object(const struct scn_result *r);
/* The "whole run:" lines of the text report, with what each number means. */
void scn_report_totals_line(const struct scn_result *r, struct buf *out);

#endif
