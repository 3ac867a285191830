# language: fr
@socle:MSS
Fonctionnalité: Messagerie sécurisée de santé (MSSanté) depuis le DPI
  Le DPI envoie les documents d'un patient par MSSanté (archive IHE_XDM, PDF, en-têtes X-MSS),
  depuis sa BAL applicative (certificat d'organisation) ou la BAL personnelle du professionnel
  connecté avec Pro Santé Connect, refuse les serveurs au chiffrement ou au certificat douteux,
  et intègre les documents reçus. Le bouchon opérateur MSSanté juge chaque message soumis.

  Contexte:
    Soit le service MSSanté est disponible
    Et le professionnel "médecin hospitalier" est inscrit à Pro Santé Connect

  @exigence:SC.MSS/CONF.27
  Scénario: La BAL applicative s'ouvre avec le certificat d'organisation de la structure
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le logiciel a ouvert sa BAL applicative avec le certificat d'organisation de la structure

  @exigence:SC.MSS/CONF.01
  Scénario: Le document part par la soumission authentifiée de l'opérateur
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le message a été soumis depuis la BAL authentifiée auprès de l'opérateur

  @exigence:SC.MSS/CONF.16
  Scénario: Chaque message porte la référence du logiciel
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors chaque message soumis porte la référence du logiciel (X-MSS-NIL)

  @exigence:SC.MSS/CONF.15
  Scénario: Le code du document CDA accompagne l'archive IHE_XDM
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors chaque message soumis porte le code du document CDA (X-MSS-CODECDA)

  @exigence:SC.MSS/CONF.14
  Scénario: X-MSS-INS vaut O pour une identité qualifiée
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors X-MSS-INS vaut O pour une identité qualifiée, N sinon

  @exigence:SC.MSS/CONF.14
  Scénario: X-MSS-INS vaut N pour une identité récupérée mais non qualifiée
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors X-MSS-INS vaut O pour une identité qualifiée, N sinon

  @exigence:SC.MSS/CONF.23
  Scénario: Un seul patient par message, avec son archive IHE_XDM et le PDF
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors chaque message soumis concerne un seul patient, avec son archive IHE_XDM et le PDF

  @exigence:SC.MSS/CONF.25
  Scénario: L'objet suit la convention XDM/1.0/DDM+
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors chaque message soumis a l'objet XDM/1.0/DDM+ au nom du patient

  @exigence:MSS/PROV.01
  Scénario: L'archive IHE_XDM est conforme
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors l'archive IHE_XDM de chaque message est conforme

  @exigence:MSS/PROV.02
  Scénario: Le PDF joint est nommé selon la convention
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le PDF joint est nommé selon la convention date_type_NOM_prénom

  @exigence:MSS/PROV.03
  Scénario: Le message est un MIME correct
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors chaque message soumis est un MIME correct (Message-ID, texte en UTF-8)

  @exigence:SC.MSS/CONF.21
  Scénario: Un message au patient dont la réponse est bloquée porte X-MSS-MES: FIN
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au patient en bloquant sa réponse
    Alors le message au patient porte X-MSS-MES: FIN

  @exigence:MSS/UX.33
  Scénario: Le professionnel demande un accusé de lecture
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au patient avec accusé de lecture
    Alors le message demande un accusé de lecture (Disposition-Notification-To)

  @exigence:MSS/va1.13
  Scénario: Un document corrigé annule et remplace le précédent
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Quand le logiciel envoie un document corrigé qui annule et remplace le précédent
    Alors le document corrigé remplace le précédent (relatedDocument RPLC, même setId)

  @exigence:SC.MSS/CONF.07
  Scénario: La session est chiffrée avant toute authentification
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le logiciel ne s'est jamais authentifié avant d'avoir chiffré la session

  @exigence:SC.MSS/CONF.07
  Scénario: Un serveur qui propose l'authentification en clair est refusé
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et l'opérateur MSSanté présente un serveur sans STARTTLS qui propose l'authentification en clair
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le logiciel ne s'est jamais authentifié avant d'avoir chiffré la session

  @exigence:SC.MSS/CONF.05
  Plan du scénario: Un serveur au chiffrement insuffisant est refusé
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et l'opérateur MSSanté présente <sonde>
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le logiciel a refusé de poursuivre avec ce serveur

    Exemples:
      | sonde                                        |
      | un serveur limité à TLS 1.0 et 1.1           |
      | un serveur aux suites de chiffrement faibles |

  @exigence:SC.MSS/CONF.06
  Scénario: Un serveur au certificat expiré est refusé
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et l'opérateur MSSanté présente un certificat serveur expiré
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le logiciel a refusé de poursuivre avec ce serveur

  @exigence:SC.MSS/CONF.12
  Scénario: Un serveur au certificat révoqué est refusé
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et l'opérateur MSSanté présente un certificat serveur révoqué
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le logiciel a refusé de poursuivre avec ce serveur

  @exigence:SC.MSS/CONF.22
  Scénario: La dernière liste de révocation valide reste utilisée quand elle n'est plus publiée
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Et la liste de révocation de l'opérateur MSSanté n'est plus disponible
    Et l'opérateur MSSanté présente un certificat serveur révoqué
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le logiciel avait récupéré la liste de révocation quand elle était disponible
    Et le logiciel a refusé de poursuivre avec ce serveur

  @exigence:SC.MSS/CONF.24
  Scénario: Le patient d'un message reçu est celui de l'archive IHE_XDM, pas celui de l'objet
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et un confrère a adressé au logiciel un document pour ce patient, sous un objet au nom d'un autre patient
    Quand le logiciel relève sa boîte aux lettres MSSanté
    Alors le logiciel rattache le document reçu au patient désigné par l'archive IHE_XDM

  @exigence:MSS/va1.01
  Scénario: L'objet d'un message reçu s'affiche sans le préfixe technique
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et un confrère a adressé au logiciel un document pour ce patient, sous un objet au nom d'un autre patient
    Quand le logiciel relève sa boîte aux lettres MSSanté
    Alors le logiciel affiche l'objet sans le préfixe XDM/1.0/DDM+

  @exigence:MSS/PROV.04
  Scénario: Une erreur temporaire de l'opérateur est réessayée
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et l'opérateur MSSanté répondra à la prochaine soumission par l'erreur 451
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le message a le statut "envoye"

  @exigence:MSS/PROV.04
  Scénario: Une erreur définitive est signalée et le message est conservé pour être renvoyé
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et l'opérateur MSSanté répondra à la prochaine soumission par l'erreur 554
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le message a le statut "en_erreur"
    Quand le logiciel renvoie les messages MSSanté en attente
    Alors le message conservé est finalement accepté par l'opérateur

  @exigence:SC.MSS/CONF.03
  Scénario: La BAL personnelle s'ouvre avec le jeton Pro Santé Connect du professionnel
    Soit le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa carte CPS
    Et le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Alors le logiciel s'est authentifié sur la BAL personnelle du professionnel avec son jeton Pro Santé Connect

  @exigence:SC.MSS/CONF.28
  Scénario: Le jeton d'accès utilisé pour MSSanté n'est jamais écrit sur disque
    Soit le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa carte CPS
    Et le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie par MSSanté un document de ce patient au professionnel "médecin généraliste"
    Et le logiciel relève sa boîte aux lettres MSSanté
    Alors aucun jeton émis par Pro Santé Connect ne figure dans les fichiers du logiciel

  @exigence:SC.MSS/CONF.10
  Scénario: La fin de la session Pro Santé Connect ferme la session MSSanté
    Soit le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa carte CPS
    Et le logiciel a relevé sa boîte aux lettres MSSanté
    Quand le professionnel se déconnecte du logiciel
    Alors le logiciel a fermé sa session IMAP

  @exigence:SC.MSS/CONF.11
  Scénario: À l'expiration du jeton d'accès, le logiciel se reconnecte avec un jeton neuf
    Soit Pro Santé Connect délivre des jetons d'accès valables 1 seconde
    Et le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa carte CPS
    Et le logiciel a relevé sa boîte aux lettres MSSanté
    Et le jeton d'accès du professionnel a expiré pendant sa session MSSanté
    Quand le logiciel relève sa boîte aux lettres MSSanté
    Alors le logiciel s'est ré-authentifié avec un nouveau jeton après l'expiration du précédent
