/*
 * commands.h — the subcommands of `steward`.  Each takes the arguments
 * after its own name (argv[0] is the subcommand name) and returns an exit
 * code from common/exitcodes.h.
 */
#ifndef STEWARD_CLI_COMMANDS_H
#define STEWARD_CLI_COMMANDS_H

int cmd_log(int argc, char **argv);      /* cli/cmd_log.c */
int cmd_rules(int argc, char **argv);    /* cli/cmd_rules.c */
int cmd_apply(int argc, char **argv);    /* cli/cmd_apply.c */
int cmd_dlq(int argc, char **argv);      /* cli/cmd_dlq.c */
int cmd_capture(int argc, char **argv);  /* cli/cmd_capture.c */
int cmd_status(int argc, char **argv);   /* cli/cmd_status.c */

/* Add one line per subcommand, and its entry in main.c's table. */

#endif
